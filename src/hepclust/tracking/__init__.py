"""Track reconstruction's bookkeeping: TrackML's hit weights, its score and the usual
tracking metrics, and the subsampling of events to a fraction of their particles."""
