"""Typed settings of the anomaly search's statistics stages, from the config's `anomaly`
block (described in workflow/schemas/config.schema.yaml): each stage's function signature
says which keys it reads."""

from dataclasses import dataclass

import numpy as np

from hepclust.anomaly.fit import choose_fit_range
from hepclust.anomaly.models import MODELS, ScanSettings


@dataclass(frozen=True)
class FitRangeSettings:
    """The m_jj histogram (`histogram_low` to `high`, bins of `bin_width` GeV) and the start
    of the fitted range: `low`, or where None, the first start that passes the turn-on test
    at `min_p` (`choose_fit_range`)."""

    low: float | None
    high: float
    histogram_low: float
    bin_width: float
    min_p: float = 0.05

    @classmethod
    def from_config(cls, block: dict) -> "FitRangeSettings":
        return cls(low=block["mjj_low"], high=block["mjj_high"],
                   histogram_low=block["mjj_histogram_low"], bin_width=block["mjj_bin_width"],
                   min_p=block["fit_range_min_p"])

    @property
    def edges(self) -> np.ndarray:
        bins = round((self.high - self.histogram_low) / self.bin_width)
        if bins < 1 or not np.isclose(self.histogram_low + bins * self.bin_width, self.high):
            raise ValueError(f"the m_jj histogram from {self.histogram_low} to {self.high} GeV "
                             f"does not hold whole bins of {self.bin_width} GeV")
        return np.linspace(self.histogram_low, self.high, bins + 1)


def fit_range(mjj: np.ndarray, settings: FitRangeSettings) -> dict:
    """The histogram's edges and the fitted range: chosen from `mjj` (the training
    sample's inclusive spectrum, independent of the evaluated events) or the configured one."""
    edges = settings.edges
    if settings.low is None:
        return {**choose_fit_range(mjj, edges, settings.high, settings.min_p),
                "chosen_from_data": True}
    counts, _ = np.histogram(mjj, bins=edges)
    return {"low": float(settings.low), "high": float(settings.high), "edges": edges.tolist(),
            "counts": counts.tolist(), "chosen_from_data": False}


@dataclass(frozen=True)
class SearchSettings:
    """The bump hunt: the Gaussian signal's width and the mass grid's step (GeV), the
    background model (`MODELS`), the toys of each cluster's trials factor and the level u0
    they count upcrossings of, and the events a cluster needs in the fitted range."""

    signal_width: float
    mass_step: float
    trials_toys: int
    trials_threshold: float
    min_fit_events: int
    background_model: str = "own"

    def __post_init__(self):
        if self.background_model not in MODELS:
            raise ValueError(f"anomaly.background_model must be one of {MODELS}, not "
                             f"{self.background_model!r}")

    @classmethod
    def from_config(cls, block: dict) -> "SearchSettings":
        return cls(signal_width=block["signal_width"], mass_step=block["mass_step"],
                   trials_toys=block["trials_toys"], trials_threshold=block["trials_threshold"],
                   min_fit_events=block["min_fit_events"],
                   background_model=block.get("background_model", "own"))

    def scan(self, fit_range_result: dict) -> ScanSettings:
        """The scan over the histogram and range of `fit_range`'s result."""
        return ScanSettings.build(fit_range_result["edges"], fit_range_result["low"],
                                  fit_range_result["high"], self.signal_width, self.mass_step,
                                  self.trials_toys, self.trials_threshold, self.min_fit_events)
