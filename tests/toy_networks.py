"""Networks small enough to reason about, for the tests of the training phases."""

from torch import nn


class LinearNetwork(nn.Module):
    """A linear 'network' on two features: embedding = W x, logits = the embedding."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 2)

    def forward(self, features, mask):
        embedding = self.linear(features)
        return embedding, embedding
