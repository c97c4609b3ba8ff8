"""ABCNet (Mikuni and Canelli, Eur. Phys. J. Plus 135, 463 (2020)) as UCluster uses it
(PRD 103, 092007, Fig. 1), on dense batches: features (B, P, F) and a mask (B, P).

    GAPLayer(k, H) on (delta-eta, delta-phi) -> [input, attention] -> 64 -> 128
    GAPLayer(k, H) on the 128 learned features -> [input, attention] -> 256 -> 256
    [64, 128, 256, 256, graph features of both GAPLayers, (globals)] -> E -> pool -> embedding
    embedding -> 256 -> 128 -> classes            (or, per particle, [embedding, 64, 256] ->
                                                   256 -> 128 -> classes for each particle)

Every "->" is a shared per-particle linear map (a 1x1 convolution) with batch
normalisation and ReLU. Sizes follow UCluster's W/Z/top model (k = 10, one head, GAPLayer
encodings of 16 and 128, E = 3). Padded particles are never neighbours, never enter an
attention softmax, a batch-norm statistic or the pooling, and are zero after every layer,
so whatever the padding holds changes nothing. Unlike the TensorFlow code, the attention
scores are plain linear maps as in the GAPNet paper (the code passes each through batch
norm and ReLU), and padding is masked everywhere, not only kept out of the first kNN.
"""

from collections.abc import Sequence
from itertools import pairwise
from typing import Literal, get_args

import torch
from torch import nn
from torch.nn import functional as F

Pooling = Literal["max", "mean", "sum", "mean_log_n"]
POOLINGS = get_args(Pooling)


class MaskedBatchNorm(nn.Module):
    """Batch normalisation over the last axis whose statistics use the masked-in entries only.

    Shapes: x (..., C), mask (...) or None for all entries.
    """

    def __init__(self, channels: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def _batch_statistics(self, x: torch.Tensor, mask: torch.Tensor | None):
        """(count, mean, var, live) of the masked-in rows of x (..., C), with the running
        statistics updated: count = max(rows, 1) the divisor, var clamped at 0 and live
        where it needed no clamp (None without a mask)."""
        flat = x.reshape(-1, x.shape[-1])
        if mask is None:
            n = count = flat.shape[0]
            mean = flat.mean(dim=0)
            var, live = (flat - mean).square().mean(dim=0), None
        else:
            # Masked sums as matrix-vector products instead of x[mask]: no boolean
            # gather, no scatter in the backward pass and no masked temporaries.
            weight = mask.reshape(-1).to(x.dtype)
            n = int(mask.sum())
            count = max(n, 1)
            mean = torch.mv(flat.T, weight) / count
            raw = torch.mv(flat.square().T, weight) / count - mean.square()
            var, live = raw.clamp(min=0), raw >= 0  # clamp's gradient: where raw >= 0
        with torch.no_grad():
            unbiased = var * n / (n - 1) if n > 1 else var
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(unbiased, self.momentum)
        return count, mean, var, live

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.training:
            _, mean, var, _ = self._batch_statistics(x, mask)
        else:
            mean, var = self.running_mean, self.running_var
        scale = self.weight * torch.rsqrt(var + self.eps)
        return torch.addcmul(self.bias - mean * scale, x, scale)

    def relu(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """ReLU(self(x, mask)) with masked-out rows set to 0: the same outputs, gradients
        and running statistics as `F.relu(self(x, mask)) * mask`, in fewer passes over x
        (`NormReLU`'s hand-written backward)."""
        weight = None if mask is None else mask.reshape(-1).to(x.dtype)
        if not self.training:
            return NormReLU.apply(x, self.weight, self.bias, self.running_mean,
                                  self.running_var, weight, None, None, self.eps)
        with torch.no_grad():  # NormReLU's backward carries the statistics' gradient
            count, mean, var, live = self._batch_statistics(x, mask)
        return NormReLU.apply(x, self.weight, self.bias, mean, var, weight, count, live,
                              self.eps)


class NormReLU(torch.autograd.Function):
    r"""y = ReLU(gamma (x - mean) / sqrt(var + eps) + beta) * w for x (..., C) and row
    weights w (...) in {0, 1} (None: all 1), with the backward written out.

    With batch statistics (`count` given: mean = sum_n w_n x_n / count, var = sum_n w_n
    x_n^2 / count - mean^2, clamped at 0 where `live` is False) the gradient runs through
    them too: with g = dL/dz (0 where y = 0, so on every masked-out row), r = (var +
    eps)^{-1/2}, s = gamma r, A = sum_n g_n / count, B = r^2 sum_n g_n (x_n - mean) / count,

    .. math::
        dL/dx_n = s g_n - w_n s (A + B (x_n - mean)), \qquad
        dL/d\gamma = r \sum_n g_n (x_n - mean), \qquad dL/d\beta = \sum_n g_n.

    Without (`count` None: the running statistics) dL/dx = s g. Inputs: x, gamma, beta,
    mean, var, w, count, live, eps; mean, var and live carry no gradient.
    """

    @staticmethod
    def forward(ctx, x, gamma, beta, mean, var, weight, count, live, eps):
        inv_std = torch.rsqrt(var + eps)
        scale = gamma * inv_std
        out = torch.addcmul(beta - mean * scale, x, scale).relu_()
        if weight is not None:
            out.mul_(weight.view(*x.shape[:-1], 1))
        ctx.count = count
        ctx.save_for_backward(x, out, gamma, mean, inv_std, weight, live)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, out, gamma, mean, inv_std, weight, live = ctx.saved_tensors
        channels = x.shape[-1]
        g = torch.ops.aten.threshold_backward(grad_out, out, 0.0).reshape(-1, channels)
        flat = x.reshape(-1, channels)
        sum_g = g.sum(dim=0)
        centred = (g * flat).sum(dim=0) - mean * sum_g
        scale = gamma * inv_std
        if ctx.count is None:
            grad_x = g * scale
        else:
            a = sum_g / ctx.count
            b = inv_std.square() * centred / ctx.count
            if live is not None:
                b = b * live
            grad_x = torch.addcmul(scale * (b * mean - a), flat, -scale * b)
            if weight is not None:
                grad_x.mul_(weight.unsqueeze(-1))
            grad_x.addcmul_(g, scale)
        return (grad_x.view_as(x), centred * inv_std, sum_g, None, None, None, None, None,
                None)


class PointLinear(nn.Module):
    """ReLU(BN(W x + b)) applied to every particle (or edge); masked-out rows are set to 0."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.norm = MaskedBatchNorm(out_features)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.activate(self.linear(x), mask)

    def activate(self, linear: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """ReLU(BN(.)) of an already computed W x + b, masked rows set to 0."""
        return self.norm.relu(linear, mask)


def knn(points: torch.Tensor, mask: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The `k` nearest real particles of each particle, itself included (distance 0).

    Returns (index (B, P, k'), valid (B, P, k')) with k' = min(k, P); a slot is invalid
    when it points to padding (a jet with fewer than k real particles) or sits in the row
    of a padded particle.
    """
    with torch.no_grad():
        # |x_i - x_j|^2 - |x_i|^2 = |x_j|^2 - 2 x_i . x_j ranks the j of row i alike.
        norms = points.square().sum(dim=-1).unsqueeze(1)
        distance = torch.baddbmm(norms, points, points.transpose(1, 2), alpha=-2)
        distance = distance.masked_fill(~mask.unsqueeze(1), float("inf"))
        index = distance.topk(min(k, points.shape[1]), dim=-1, largest=False).indices
        valid = mask.gather(1, index.flatten(1)).view_as(index)
        return index, valid & mask.unsqueeze(-1)


def gather_neighbours(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (B, P, C), index (B, P, k) -> the neighbours' rows (B, P, k, C)."""
    batch, points, k = index.shape
    flat = index.reshape(batch, points * k, 1).expand(-1, -1, x.shape[-1])
    return x.gather(1, flat).view(batch, points, k, x.shape[-1])


def _slot_major_neighbours(index: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """index and valid (B, P, k) -> (k, B P) rows of the (B P + 1, C) matrix whose last row
    is the sentinel: slot j of particle n = (b, p) reads row b P + index[b, p, j], an
    invalid slot the sentinel."""
    batch, points, _ = index.shape
    offsets = torch.arange(batch, device=index.device).mul_(points).view(-1, 1, 1)
    rows = (index + offsets).masked_fill_(~valid, batch * points)
    return rows.permute(2, 0, 1).reshape(index.shape[2], batch * points).contiguous()


class OneHeadEdgeAttention(torch.autograd.Function):
    r"""The edge part of a one-head GAPLayer, forward and backward written out so that the
    edge tensor is built once and each pass over it does one job.

    Inputs: source (B, P, C) = (s p)_i + c, target (B, P, C) = (s p)_j, node_term (B, P)
    = a . x'_i, edge_score e (C,), index and valid (B, P, k), the LeakyReLU slope.
    y_ij = ReLU(source_i - target_j) (0 on invalid edges),
    c_ij = softmax_j LeakyReLU(node_term_i + e . y_ij) over valid j (0 elsewhere).
    Returns (sum_j c_ij y_ij, max_j y_ij), both (B, P, C).

    The edge tensor is laid out neighbour slot first, (k, B P, C), so that every
    per-particle operand (source, the gradients of the outputs) broadcasts over whole
    contiguous (B P, C) slices and the sums and the max over the neighbours run slice by
    slice, instead of over short rows of C. An invalid slot reads a sentinel target of
    +inf, so its edge is ReLU(-inf) = 0 without a masking pass, and its gradient is 0.

    Backward: the max sends its gradient to the first arg-max slot (the ties are ReLU
    zeros, whose gradient the ReLU stops); everything else is the chain rule of these
    formulas.
    """

    @staticmethod
    def forward(ctx, source, target, node_term, edge_score, index, valid, negative_slope):
        batch, points, k = index.shape
        channels, n = source.shape[-1], batch * points
        rows = _slot_major_neighbours(index, valid)
        targets = torch.cat([target.reshape(n, channels),
                             target.new_full((1, channels), float("inf"))])
        edge = targets.index_select(0, rows.view(-1)).view(k, n, channels)
        torch.sub(source.reshape(n, channels), edge, out=edge).relu_()
        slot_valid = valid.permute(2, 0, 1).reshape(k, n)
        score = node_term.reshape(1, n) + (edge.view(-1, channels) @ edge_score).view(k, n)
        activated = F.leaky_relu(score, negative_slope)
        activated = activated.masked_fill(~slot_valid, torch.finfo(score.dtype).min)
        coefficients = activated.softmax(dim=0) * slot_valid
        attention = edge[0] * coefficients[0].unsqueeze(-1)
        graph = edge[0].clone()
        argmax = torch.zeros(n, channels, dtype=torch.uint8, device=edge.device)
        for slot in range(1, k):
            attention.addcmul_(edge[slot], coefficients[slot].unsqueeze(-1))
            # The last slot that raised the running max is the first arg-max; a uint8
            # product and max instead of a (slow) masked fill.
            raised = torch.gt(edge[slot], graph).view(torch.uint8)
            torch.maximum(argmax, raised * slot, out=argmax)
            torch.maximum(graph, edge[slot], out=graph)
        ctx.negative_slope = negative_slope
        ctx.save_for_backward(edge, score, coefficients, argmax, rows, edge_score)
        return attention.view(batch, points, channels), graph.view(batch, points, channels)

    @staticmethod
    def backward(ctx, grad_attention, grad_graph):
        edge, score, coefficients, argmax, rows, edge_score = ctx.saved_tensors
        _, n, channels = edge.shape
        shape = grad_attention.shape
        grad_attention = grad_attention.reshape(n, channels)
        grad_coefficients = (edge * grad_attention).sum(dim=2)
        # Softmax backward; coefficients are 0 on invalid edges, so their gradient is too.
        grad_score = coefficients * (grad_coefficients - (grad_coefficients * coefficients)
                                     .sum(dim=0, keepdim=True))
        grad_score = torch.where(score > 0, grad_score, grad_score * ctx.negative_slope)
        grad_node_term = grad_score.sum(dim=0)
        grad_edge_score = grad_score.view(1, -1) @ edge.view(-1, channels)
        grad_edge = coefficients.unsqueeze(-1) * grad_attention
        grad_edge.view(-1, channels).addmm_(grad_score.view(-1, 1), edge_score.view(1, -1))
        grad_edge.scatter_add_(0, argmax.long().unsqueeze(0),
                               grad_graph.reshape(1, n, channels))
        # The ReLU's backward, in place.
        torch.ops.aten.threshold_backward.grad_input(grad_edge, edge, 0.0, grad_input=grad_edge)
        grad_source = grad_edge.sum(dim=0)
        # A scatter over the expanded index: several times faster than index_add_ on the
        # CPU for 16 channels, as fast for 128.
        grad_target = torch.zeros(n + 1, channels, dtype=edge.dtype, device=edge.device)
        grad_target.scatter_add_(0, rows.view(-1, 1).expand(-1, channels),
                                 grad_edge.view(-1, channels))
        return (grad_source.view(shape), grad_target[:n].neg_().view(shape),
                grad_node_term.view(shape[:2]), grad_edge_score.view(channels),
                None, None, None)


class GAPLayer(nn.Module):
    r"""Graph attention pooling (GAPNet, arXiv:1905.08705, as modified by ABCNet).

    For particle i with neighbours j (itself included) and each head h:

    .. math::
        x'_i = \mathrm{ReLU}(\mathrm{BN}(W_h x_i)), \qquad
        y'_{ij} = \mathrm{ReLU}(\mathrm{BN}(V_h (x_i - x_j) + b_h)),

        c_{ij} = \mathrm{softmax}_j\,\mathrm{LeakyReLU}(a_h \cdot x'_i + e_h \cdot y'_{ij}),

        \hat{x}_i = \mathrm{ReLU}\Big(\sum_j c_{ij}\, y'_{ij} + d_h\Big), \qquad
        g_i = \max_j y'_{ij}.

    Returns the attention features :math:`\hat{x}` and the graph features :math:`g`, the
    heads concatenated. Shapes: x (B, P, C), index and valid (B, P, k), mask (B, P) ->
    two (B, P, heads * out_features).
    """

    def __init__(self, in_features: int, out_features: int, heads: int = 1,
                 negative_slope: float = 0.2):
        super().__init__()
        self.heads, self.out_features, self.negative_slope = heads, out_features, negative_slope
        self.node = PointLinear(in_features, heads * out_features, bias=False)
        # No bias: BN's mean removes it (V (x_i - x_j) + b in the formula).
        self.edge = PointLinear(in_features, heads * out_features, bias=False)
        self.node_score = nn.Parameter(torch.empty(heads, out_features))
        self.edge_score = nn.Parameter(torch.empty(heads, out_features))
        self.bias = nn.Parameter(torch.zeros(heads * out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = self.out_features**-0.5
        nn.init.uniform_(self.node_score, -bound, bound)
        nn.init.uniform_(self.edge_score, -bound, bound)
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor, index: torch.Tensor, valid: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        node = self.node(x, mask)
        if self.heads == 1:
            # The einsums below in one pass over the edge tensor, with its own backward.
            scaled, shift = self._edge_affine(x, index, valid)
            attention, graph = OneHeadEdgeAttention.apply(
                scaled + shift, scaled, node @ self.node_score[0], self.edge_score[0], index,
                valid, self.negative_slope)
            attention = F.relu(attention + self.bias).masked_fill(~mask.unsqueeze(-1), 0.0)
            return attention, graph
        edge = self._edges(x, index, valid)
        node = node.unflatten(-1, (self.heads, self.out_features))
        edge = edge.unflatten(-1, (self.heads, self.out_features))
        score = (torch.einsum("bphf,hf->bph", node, self.node_score).unsqueeze(2)
                 + torch.einsum("bpkhf,hf->bpkh", edge, self.edge_score))
        score = F.leaky_relu(score, self.negative_slope)
        # A finite fill keeps padded rows (no valid neighbour at all) free of NaN.
        score = score.masked_fill(~valid.unsqueeze(-1), torch.finfo(score.dtype).min)
        coefficients = score.softmax(dim=2) * valid.unsqueeze(-1)
        attention = torch.einsum("bpkh,bpkhf->bphf", coefficients, edge).flatten(2)
        attention = F.relu(attention + self.bias).masked_fill(~mask.unsqueeze(-1), 0.0)
        # y' >= 0 after its ReLU and invalid edges are 0, so the max is over valid edges.
        graph = edge.flatten(3).amax(dim=2)
        return attention, graph


    def _edge_affine(self, x: torch.Tensor, index: torch.Tensor,
                     valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(s p, c) with y'_ij = ReLU((s p)_i - (s p)_j + c) = ReLU(BN(V (x_i - x_j) + b)).

        With p = V x (one linear map per particle, not per edge), BN's affine map s (.) + t
        gives y'_ij = ReLU((s p)_i - (s p)_j + c): the edge tensor is built once, already
        normalised. In training, BN's statistics over the valid edges come from
        per-particle sums: with w_i the valid edges leaving i, d_j those reaching j and
        S_i = sum_j p_j over i's valid neighbours (a (P, P) adjacency product),
        sum (p_i - p_j) = sum_i w_i p_i - sum_j d_j p_j and
        sum (p_i - p_j)^2 = sum_i w_i p_i^2 - 2 sum_i p_i S_i + sum_j d_j p_j^2.
        b would shift the mean only and cancel, so V has none.
        """
        norm = self.edge.norm
        projected = F.linear(x, self.edge.linear.weight)
        # The norm's own mode, not the layer's: `training.freeze_norms` puts the norm alone
        # in evaluation mode, and then its running statistics must hold here too.
        if norm.training:
            weight = valid.to(x.dtype)
            adjacency = torch.zeros(*index.shape[:2], index.shape[1], dtype=x.dtype,
                                    device=x.device).scatter_add_(2, index, weight)
            out_degree, in_degree = adjacency.sum(dim=2), adjacency.sum(dim=1)
            flat = projected.reshape(-1, projected.shape[-1])
            n = int(valid.sum())
            count = max(n, 1)
            neighbour_sum = torch.bmm(adjacency, projected).reshape(flat.shape)
            difference = torch.mv(flat.T, (out_degree - in_degree).reshape(-1)) / count
            square = (torch.mv(flat.square().T, (out_degree + in_degree).reshape(-1))
                      - 2 * (flat * neighbour_sum).sum(dim=0)) / count
            var = (square - difference.square()).clamp(min=0)
            with torch.no_grad():
                unbiased = var * n / (n - 1) if n > 1 else var
                norm.running_mean.lerp_(difference, norm.momentum)
                norm.running_var.lerp_(unbiased, norm.momentum)
            scale = norm.weight * torch.rsqrt(var + norm.eps)
            shift = norm.bias - difference * scale
        else:
            scale = norm.weight * torch.rsqrt(norm.running_var + norm.eps)
            shift = norm.bias - norm.running_mean * scale
        return projected * scale, shift

    def _edges(self, x: torch.Tensor, index: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """y'_ij = ReLU(BN(V (x_i - x_j) + b)) of every edge, 0 on invalid ones (B, P, k, C)."""
        scaled, shift = self._edge_affine(x, index, valid)
        edge = (scaled + shift).unsqueeze(2) - gather_neighbours(scaled, index)
        # ReLU(0) = 0: zeroing the invalid edges before the ReLU masks them after it.
        return F.relu(edge.masked_fill_(~valid.unsqueeze(-1), 0.0))


class ABCNet(nn.Module):
    """UCluster's ABCNet: `forward(features, mask, global_features=None)` returns
    (logits, embedding).

    logits: (B, num_classes), or (B, P, num_classes) with `per_particle` (rows of padded
    particles carry no meaning); embedding: (B, embedding_size), the pooled vector the
    clustering loss uses. `pooling` is "max" as the paper states (the W/Z/top model of the
    UCluster code averages), "sum", or "mean_log_n" (the mean and the log of the number of
    real particles, so embedding_size + 1 numbers): the last two keep the particle count
    that the mean drops. `dropout` is applied before every hidden layer of the head.
    `coordinates` are the feature columns of the first kNN.
    `global_features` > 0 adds per-event inputs (B, G), encoded to `global_size` and tiled
    onto every particle before the aggregation, as UCluster's anomaly-detection model does.
    """

    def __init__(self, in_features: int = 8, num_classes: int = 20, *, k: int = 10,
                 heads: int = 1, embedding_size: int = 3, gap_sizes: Sequence[int] = (16, 128),
                 conv_sizes: Sequence[int] = (64, 128, 256, 256),
                 head_sizes: Sequence[int] = (256, 128), pooling: Pooling = "max",
                 coordinates: Sequence[int] = (0, 1), global_features: int = 0,
                 global_size: int = 16, per_particle: bool = False, dropout: float = 0.0):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        c1, c2, c3, c4 = conv_sizes
        g1, g2 = (heads * size for size in gap_sizes)
        self.k, self.pooling, self.per_particle = k, pooling, per_particle
        self.embedding_size = embedding_size
        self.coordinates = list(coordinates)
        self.global_features = global_features
        self.gap1 = GAPLayer(in_features, gap_sizes[0], heads)
        self.conv1 = PointLinear(in_features + g1, c1)
        self.conv2 = PointLinear(c1, c2)
        self.gap2 = GAPLayer(c2, gap_sizes[1], heads)
        self.conv3 = PointLinear(in_features + g2, c3)
        self.conv4 = PointLinear(c3, c4)
        self.global_encoder = PointLinear(global_features, global_size) \
            if global_features else None
        aggregated = c1 + c2 + c3 + c4 + g1 + g2 + (global_size if global_features else 0)
        self.aggregate = PointLinear(aggregated, embedding_size)
        pooled = embedding_size + (pooling == "mean_log_n")
        head_in = pooled + c1 + c3 if per_particle else pooled
        self.dropout = nn.Dropout(dropout)
        sizes = [head_in, *head_sizes]
        self.head = nn.ModuleList(PointLinear(a, b) for a, b in pairwise(sizes))
        self.output = nn.Linear(sizes[-1], num_classes)

    def forward(self, features: torch.Tensor, mask: torch.Tensor,
                global_features: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if (global_features is None) != (self.global_encoder is None):
            raise ValueError(f"this ABCNet takes {self.global_features} global features per "
                             f"event; got {'none' if global_features is None else 'some'}")
        mask = mask.bool()
        x = features.masked_fill(~mask.unsqueeze(-1), 0.0)
        index, valid = knn(x[..., self.coordinates], mask, self.k)
        attention1, graph1 = self.gap1(x, index, valid, mask)
        net1 = self.conv1(torch.cat([x, attention1], dim=-1), mask)
        net2 = self.conv2(net1, mask)
        index, valid = knn(net2, mask, self.k)
        attention2, graph2 = self.gap2(net2, index, valid, mask)
        net3 = self.conv3(torch.cat([x, attention2], dim=-1), mask)
        net4 = self.conv4(net3, mask)
        parts = [net1, net2, net3, net4, graph1, graph2]
        if self.global_encoder is not None:
            encoded = self.global_encoder(global_features)
            parts.append(encoded.unsqueeze(1).expand(-1, x.shape[1], -1))
        per_point = self.aggregate(torch.cat(parts, dim=-1), mask)
        embedding = self._pool(per_point, mask)

        if self.per_particle:
            tiled = embedding.unsqueeze(1).expand(-1, x.shape[1], -1)
            hidden = torch.cat([tiled, net1, net3], dim=-1)
            for layer in self.head:
                hidden = layer(self.dropout(hidden), mask)
        else:
            hidden = embedding
            for layer in self.head:
                hidden = layer(self.dropout(hidden))
        return self.output(hidden), embedding

    def _pool(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # Padded rows are 0 and real rows are ReLU outputs (>= 0), so a plain max ignores them.
        if self.pooling == "max":
            return x.amax(dim=1)
        total, count = x.sum(dim=1), mask.sum(dim=1, keepdim=True).clamp(min=1).to(x.dtype)
        if self.pooling == "sum":
            return total
        if self.pooling == "mean":
            return total / count
        return torch.cat([total / count, count.log()], dim=1)
