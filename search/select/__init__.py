"""The statistics of selection after the screen: intensification, the race on fresh seeds, its test, power and verdict."""
