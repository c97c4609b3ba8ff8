"""Hand-made tracks for the tests of the track building."""

import numpy as np


def two_straight_tracks() -> tuple[np.ndarray, np.ndarray]:
    """Hits 0-4 and 5-9: two tracks crossing layers 1-5 at y = 0 and y = 100 mm."""
    layers = np.tile(np.arange(1, 6), 2)
    positions = np.array([[100.0 * layer, 100.0 * track, 0.0]
                          for track in range(2) for layer in range(1, 6)])
    return layers, positions
