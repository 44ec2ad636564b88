"""The embedded default's networks and training recipe (torch is imported by these modules only
when they are imported; the rest of onnx_netadapt does not import them)."""
