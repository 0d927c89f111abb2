"""Pure domain logic, no I/O: histograms and percentiles, ROI, drift detection,
anomaly scores, redaction and sanitising, the FSAR report parser (filled in by the
issues that need them)."""
