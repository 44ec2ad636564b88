"""Built-in latency runner plugins (ORT, TFLite, SNPE), registered under the
``onnx_netadapt.runners`` entry-point group. They arrive with the latency-measurement work."""
