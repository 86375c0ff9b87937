"""Text front end: normalization, G2P and sentence splitting for zh, en, ja, ko, yue and mixed text."""
