"""UCluster for anomaly detection (PRD 103, 092007, Sec. VI): per-particle inputs and
jet-mass segmentation labels of dijet events, the dijet-function fits of the background
estimate from the nearest cluster, and the signal-to-background bookkeeping of clusters."""
