"""Other tools' formats: LeRobot datasets (`lerobot.py`)."""
