"""Method plugins: one file per method, registered by name (installed as ``mcbench.methods``)."""
