"""The answer engine: cited answers from the knowledge base, a calibrated confidence, and refusals."""
