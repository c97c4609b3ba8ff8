"""UCluster (Mikuni and Canelli, PRD 103, 092007): ABCNet's jet features, the network, the
focal and deep-k-means clustering losses, and the Hungarian clustering accuracy."""
