"""Model files shipped inside the package (the prompt-attack detector and the passage injection scanner), each
verified against the SHA-256 its loader names before use. Built by models/train_guard.py."""
