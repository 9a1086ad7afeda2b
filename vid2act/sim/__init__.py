"""The PyBullet world, the Panda, the task families and the environment that joins them."""
