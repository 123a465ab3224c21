"""Feature engineering: small pure transforms on series-by-day matrices, one catalog, one builder."""
