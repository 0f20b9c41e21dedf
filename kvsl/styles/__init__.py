from kvsl.styles.scorers import *  # noqa: F403
