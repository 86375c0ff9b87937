"""Text front end: normalization, G2P and sentence splitting for zh, en and mixed zh+en."""
