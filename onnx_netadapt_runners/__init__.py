"""Built-in latency runner plugins (ORT, TFLite, SNPE), registered under the
``onnx_netadapt.runners`` entry-point group.

The import name is ``onnx_netadapt_runners``, not a bare ``runners`` that any other project may
also install (issue 14)."""
