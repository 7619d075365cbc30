"""Analytics: daily rollups and the dashboard read from them, knowledge gaps clustered by meaning, and reviewers'
labels on AI replies (the ground truth for accuracy figures and for recalibrating confidence)."""
