"""Headline numbers of the data stage."""

import numpy as np
import pyarrow as pa

from hepclust.io.schema import JET_LABELS


def _mode(values: np.ndarray, bins: np.ndarray) -> float:
    counts, edges = np.histogram(values, bins=bins)
    return float(0.5 * (edges[counts.argmax()] + edges[counts.argmax() + 1]))


def summarize_jets(jets: pa.Table) -> dict:
    """Per class: count, mass peak (mode in 4 GeV bins) and median, contained fraction."""
    mass, label = jets.column("jet_mass").to_numpy(), jets.column("label").to_numpy()
    contained = jets.column("contained").to_numpy(zero_copy_only=False)
    classes = {}
    for name, code in JET_LABELS.items():
        chosen = label == code
        if chosen.any():
            known = [c for c in contained[chosen] if c is not None]
            classes[name] = {
                "jets": int(chosen.sum()),
                "mass_peak": _mode(mass[chosen], np.arange(0, 400, 4)),
                "mass_median": float(np.median(mass[chosen])),
                "contained_fraction": float(np.mean(known)) if known else None,
            }
    return {"jets": jets.num_rows, "classes": classes}


def summarize_dijets(dijets: pa.Table) -> dict:
    label = dijets.column("label").to_numpy()
    mjj = dijets.column("mjj").to_numpy()
    signal = label == 1
    return {
        "events": dijets.num_rows,
        "signal_events": int(signal.sum()),
        "signal_fraction": float(signal.mean()),
        "signal_mjj_median": float(np.median(mjj[signal])) if signal.any() else None,
        "background_mjj_median": float(np.median(mjj[~signal])) if (~signal).any() else None,
    }


def summarize_conversions(conversions: list[dict]) -> dict:
    """The real files converted (`hepclust.io.formats.Conversion.as_dict` each): events
    read, rows kept, and the events left out by reason, per file and in all. Empty for
    generated samples."""
    if not conversions:
        return {}
    dropped: dict[str, int] = {}
    for conversion in conversions:
        for reason, count in conversion["dropped"].items():
            dropped[reason] = dropped.get(reason, 0) + count
    return {"converted": {"files": conversions,
                          "events_read": sum(c["events_read"] for c in conversions),
                          "rows": sum(c["rows"] for c in conversions),
                          "dropped": dropped}}
