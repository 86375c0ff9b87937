"""Text front end: normalization, G2P and sentence splitting for zh, en, ja, ko and mixed text."""
