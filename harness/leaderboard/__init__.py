"""Static leaderboard builder."""
