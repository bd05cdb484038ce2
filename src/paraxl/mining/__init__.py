"""Hard-negative mining: a pure selection function and the mega-batch orchestration."""
