import pytest
import torch

from hepclust.ucluster.abcnet import ABCNet, knn
from hepclust.ucluster.losses import cluster_loss, focal_loss


def small(**kwargs) -> ABCNet:
    """A narrow ABCNet (fast), k = 4 unless asked otherwise."""
    torch.manual_seed(0)
    options = dict(k=4, heads=2, embedding_size=5, gap_sizes=(6, 8), conv_sizes=(8, 8, 12, 12),
                   head_sizes=(10, 6), num_classes=4)
    return ABCNet(**{**options, **kwargs})


def batch(counts, padded_to, features=8, seed=1):
    """Random jets with `counts` real particles, zero-padded to `padded_to`."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(len(counts), padded_to, features, generator=generator)
    mask = torch.arange(padded_to) < torch.tensor(counts).unsqueeze(1)
    return x.masked_fill(~mask.unsqueeze(-1), 0.0), mask


def with_garbage(x, mask, extra, seed=2):
    """The same jets with `extra` more padding slots, every padded slot full of garbage."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.cat([x, torch.zeros(x.shape[0], extra, x.shape[2])], dim=1)
    mask = torch.cat([mask, torch.zeros(mask.shape[0], extra, dtype=torch.bool)], dim=1)
    garbage = 1e3 * torch.randn(x.shape, generator=generator)
    garbage[:, -1, 0], garbage[:, -2, 1] = float("nan"), float("inf")
    return torch.where(mask.unsqueeze(-1), x, garbage), mask


def test_output_shapes_of_the_default_model():
    model = ABCNet()
    x, mask = batch([30, 12, 100], 100)
    logits, embedding = model(x, mask)
    assert logits.shape == (3, 20)
    assert embedding.shape == (3, 3)
    supervised = ABCNet(num_classes=3, embedding_size=8)
    assert [t.shape for t in supervised(x, mask)] == [(3, 3), (3, 8)]


def test_per_particle_head_and_global_features():
    model = small(per_particle=True, global_features=2)
    x, mask = batch([5, 9], 9)
    events = torch.tensor([[1.0, -1.0], [0.5, 2.0]])
    logits, embedding = model(x, mask, events)
    assert logits.shape == (2, 9, 4)
    assert embedding.shape == (2, 5)
    model.eval()
    _, other = model(x, mask, events + 1.0)
    assert not torch.allclose(model(x, mask, events)[1], other)
    with pytest.raises(ValueError, match="global features"):
        model(x, mask)
    with pytest.raises(ValueError, match="global features"):
        small()(x, mask, events)


def test_knn_never_picks_padding():
    points = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [0.1, 0.0], [0.05, 0.0]]])
    mask = torch.tensor([[True, True, True, False]])
    index, valid = knn(points, mask, k=3)
    assert index[0, 0].tolist() == [0, 2, 1]  # itself first; not the padded one at 0.05
    assert valid[0, :3].all()
    assert not valid[0, 3].any()  # a padded particle has no neighbours
    index, valid = knn(points[:, :2], mask[:, :2], k=10)
    assert index.shape == (1, 2, 2)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize(("per_particle", "pooling"), [(False, "max"), (False, "mean"),
                                                       (True, "max")])
def test_padding_content_and_amount_change_nothing(train, per_particle, pooling):
    model = small(per_particle=per_particle, pooling=pooling)
    x, mask = batch([7, 3, 5], 7)
    if not train:
        model(*batch([6, 4, 7, 2], 7, seed=5))  # move the running statistics off their start
    model.train(train)
    logits, embedding = model(x, mask)
    padded_logits, padded_embedding = model(*with_garbage(x, mask, extra=6))
    torch.testing.assert_close(padded_embedding, embedding, atol=1e-5, rtol=1e-5)
    if per_particle:
        logits, padded_logits = logits[mask], padded_logits[:, :7][mask]
    torch.testing.assert_close(padded_logits, logits, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pooling", ["max", "mean"])
def test_embedding_ignores_the_order_of_particles(pooling):
    model = small(pooling=pooling, per_particle=True)
    x, mask = with_garbage(*batch([8, 5], 8), extra=3)
    logits, embedding = model(x, mask)
    order = torch.randperm(x.shape[1], generator=torch.Generator().manual_seed(4))
    shuffled_logits, shuffled = model(x[:, order], mask[:, order])
    torch.testing.assert_close(shuffled, embedding, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(shuffled_logits[mask[:, order]], logits[:, order][mask[:, order]],
                               atol=1e-5, rtol=1e-5)


def test_a_jet_with_fewer_particles_than_k():
    model = ABCNet(k=10)
    model(*batch([40, 25], 40, seed=6))  # running statistics from ordinary jets
    model.eval()
    x, mask = batch([3], 3)
    logits, embedding = model(x, mask)
    padded_logits, padded_embedding = model(*with_garbage(x, mask, extra=97))
    assert torch.isfinite(padded_logits).all()
    torch.testing.assert_close(padded_embedding, embedding, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(padded_logits, logits, atol=1e-5, rtol=1e-5)
    model.train()
    logits, embedding = model(*batch([3, 2, 50], 100))
    assert torch.isfinite(logits).all()
    assert torch.isfinite(embedding).all()


def test_gradient_reaches_every_parameter():
    model = small(global_features=3)
    x, mask = with_garbage(*batch([9, 4, 12, 7, 10, 6], 12), extra=2)
    x.requires_grad_(True)
    events = torch.randn(6, 3, generator=torch.Generator().manual_seed(7))
    logits, embedding = model(x, mask, events)
    centroids = torch.randn(3, 5, generator=torch.Generator().manual_seed(8))
    loss = focal_loss(logits, torch.tensor([0, 1, 2, 3, 0, 1])) \
        + cluster_loss(embedding, centroids, alpha=1.0)
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name
    assert (x.grad[~mask] == 0).all()  # nothing flows into the padding


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_same_result_on_the_gpu():
    model = small(per_particle=True).eval()
    model(*batch([6, 4], 6))
    x, mask = with_garbage(*batch([8, 5, 3], 8), extra=4)
    cpu_logits, cpu_embedding = model(x, mask)
    gpu_logits, gpu_embedding = model.cuda()(x.cuda(), mask.cuda())
    torch.testing.assert_close(gpu_embedding.cpu(), cpu_embedding, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(gpu_logits.cpu()[mask], cpu_logits[mask], atol=1e-4, rtol=1e-4)


def reference_gap_layer(layer, x, index, valid, mask, edge_bias):
    """GAPLayer's formula written out edge by edge: V (x_i - x_j) + b on every edge, a
    masked batch norm (the layer's) over the valid edges, the einsums. Returns
    (attention, graph)."""
    heads, size = layer.heads, layer.out_features
    norm = layer.edge.norm
    node = layer.node(x, mask).unflatten(-1, (heads, size))
    rows = torch.arange(x.shape[0]).view(-1, 1, 1)
    difference = x.unsqueeze(2) - x[rows, index]
    edge = torch.nn.functional.linear(difference, layer.edge.linear.weight, edge_bias)
    edge = torch.relu(norm(edge, valid)) * valid.unsqueeze(-1)
    edge = edge.unflatten(-1, (heads, size))
    score = (torch.einsum("bphf,hf->bph", node, layer.node_score).unsqueeze(2)
             + torch.einsum("bpkhf,hf->bpkh", edge, layer.edge_score))
    score = torch.nn.functional.leaky_relu(score, 0.2)
    score = score.masked_fill(~valid.unsqueeze(-1), torch.finfo(score.dtype).min)
    coefficients = score.softmax(dim=2) * valid.unsqueeze(-1)
    attention = torch.einsum("bpkh,bpkhf->bphf", coefficients, edge).flatten(2)
    attention = torch.relu(attention + layer.bias).masked_fill(~mask.unsqueeze(-1), 0.0)
    return attention, edge.flatten(3).amax(dim=2)


@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("train", [True, False])
def test_gap_layer_matches_its_formula_edge_by_edge(heads, train):
    """The edge batch norm from per-particle sums, the bias-free edge map and (one head)
    the hand-written backward give the explicit formula's outputs, gradients and running
    statistics, in double precision, with jets shorter than k and a padded one."""
    from hepclust.ucluster.abcnet import GAPLayer

    torch.manual_seed(3)
    layer = GAPLayer(5, 7, heads=heads).double().train(train)
    with torch.no_grad():  # running statistics away from their start, for eval mode
        layer.edge.norm.running_mean.normal_()
        layer.edge.norm.running_var.uniform_(0.5, 2.0)
        layer.edge.norm.weight.normal_()
        layer.edge.norm.bias.normal_()
    x, mask = batch([6, 3, 0, 5], 6, features=5)
    x = x.double()
    index, valid = knn(x[..., :2], mask, 4)
    x_mine = x.clone().requires_grad_(True)
    x_reference = x.clone().requires_grad_(True)
    reference_layer = GAPLayer(5, 7, heads=heads).double().train(train)
    reference_layer.load_state_dict(layer.state_dict())
    # Any bias on the edges: the batch norm removes it in training; in evaluation the
    # running mean holds the mean without it.
    edge_bias = torch.randn(heads * 7, dtype=torch.double) * train
    attention, graph = layer(x_mine, index, valid, mask)
    expected_attention, expected_graph = reference_gap_layer(
        reference_layer, x_reference, index, valid, mask, edge_bias)
    torch.testing.assert_close(attention, expected_attention)
    torch.testing.assert_close(graph, expected_graph)
    norm, expected_norm = layer.edge.norm, reference_layer.edge.norm
    torch.testing.assert_close(norm.running_var, expected_norm.running_var)
    # The running mean moves towards the batch mean less the bias.
    torch.testing.assert_close(norm.running_mean,
                               expected_norm.running_mean - norm.momentum * edge_bias)
    weights = torch.randn_like(attention), torch.randn_like(graph)
    ((attention * weights[0]).sum() + (graph * weights[1]).sum()).backward()
    ((expected_attention * weights[0]).sum() + (expected_graph * weights[1]).sum()).backward()
    torch.testing.assert_close(x_mine.grad, x_reference.grad)
    for name, parameter in layer.named_parameters():
        expected = dict(reference_layer.named_parameters())[name].grad
        torch.testing.assert_close(parameter.grad, expected, msg=name)


def test_one_head_edge_attention_gradient():
    """The one-head edge block's hand-written backward against finite differences."""
    from hepclust.ucluster.abcnet import OneHeadEdgeAttention

    torch.manual_seed(0)
    x, mask = batch([7, 3, 5], 7, features=3)
    index, valid = knn(x[..., :2], mask, 4)
    inputs = [torch.randn(3, 7, 5, dtype=torch.double, requires_grad=True),
              torch.randn(3, 7, 5, dtype=torch.double, requires_grad=True),
              torch.randn(3, 7, dtype=torch.double, requires_grad=True),
              torch.randn(5, dtype=torch.double, requires_grad=True)]
    assert torch.autograd.gradcheck(
        lambda *tensors: OneHeadEdgeAttention.apply(*tensors, index, valid, 0.2), inputs)


@pytest.mark.parametrize("heads", [1, 2])
def test_frozen_norms_hold_in_training_mode(heads):
    """With every batch norm frozen (`training.freeze_norms`), the model in training mode
    gives what it gives in evaluation mode and moves no running statistic, the GAPLayers'
    edge norms included (they used to follow the layer's mode, not the norm's)."""
    from hepclust.ucluster.training import freeze_norms

    model = small(heads=heads)
    x, mask = batch([7, 5, 9], 9)
    model.train()
    model(x, mask)  # running statistics away from their initial values
    model.eval()
    logits, embedding = model(x, mask)
    buffers = {name: value.clone() for name, value in model.named_buffers()}
    model.train()
    assert freeze_norms(model) > 0
    model(*batch([3, 8, 4], 9, seed=3))  # another batch first: nothing may move
    train_logits, train_embedding = model(x, mask)
    torch.testing.assert_close(train_logits, logits)
    torch.testing.assert_close(train_embedding, embedding)
    for name, value in model.named_buffers():
        assert torch.equal(value, buffers[name]), name


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("masked", [True, False])
def test_norm_relu_matches_batch_norm_then_relu(train, masked):
    """`MaskedBatchNorm.relu` (the hand-written `NormReLU`) gives what the plain module
    gives, ReLU(BN(x)) * mask: outputs, gradients of x, scale and shift, and running
    statistics, in double precision; one jet has a single particle (a zero variance)."""
    from hepclust.ucluster.abcnet import MaskedBatchNorm

    torch.manual_seed(5)
    fast, reference = MaskedBatchNorm(6).double(), MaskedBatchNorm(6).double()
    with torch.no_grad():
        fast.weight.normal_()
        fast.bias.normal_()
        fast.running_mean.normal_()
        fast.running_var.uniform_(0.5, 2.0)
    reference.load_state_dict(fast.state_dict())
    fast.train(train)
    reference.train(train)
    x, mask = batch([5, 1, 3], 5, features=6)
    x = (x.double() + 0.3) * 2.0
    if not masked:
        mask = None
    x_fast, x_reference = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out = fast.relu(x_fast, mask)
    expected = torch.relu(reference(x_reference, mask))
    if masked:
        expected = expected * mask.unsqueeze(-1)
    torch.testing.assert_close(out, expected)
    weights = torch.randn_like(out)
    (out * weights).sum().backward()
    (expected * weights).sum().backward()
    torch.testing.assert_close(x_fast.grad, x_reference.grad)
    torch.testing.assert_close(fast.weight.grad, reference.weight.grad)
    torch.testing.assert_close(fast.bias.grad, reference.bias.grad)
    torch.testing.assert_close(fast.running_mean, reference.running_mean)
    torch.testing.assert_close(fast.running_var, reference.running_var)


def test_norm_relu_gradient():
    """`NormReLU`'s backward against finite differences, with batch statistics."""
    from hepclust.ucluster.abcnet import NormReLU

    x, mask = batch([4, 2, 3], 4, features=3)
    weight = mask.reshape(-1).double()
    x = x.double().requires_grad_(True)

    def norm_relu(x, gamma, beta):
        flat = x.reshape(-1, 3)
        count = int(weight.sum())
        mean = torch.mv(flat.T, weight).detach() / count
        var = (torch.mv(flat.square().T, weight).detach() / count - mean.square())
        # The statistics enter as constants: the Function carries their gradient itself.
        return NormReLU.apply(x, gamma, beta, mean, var, weight, count, var >= 0, 1e-5)

    gamma = torch.tensor([1.5, -0.7, 0.9], dtype=torch.double, requires_grad=True)
    beta = torch.tensor([0.1, 0.2, -0.3], dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(norm_relu, (x, gamma, beta))


@pytest.mark.parametrize("frozen", [False, True])
def test_fast_training_steps_equal_the_reference_computation(monkeypatch, frozen):
    """Two SGD steps of the jets network (one head, sum pooling) with the fast paths (the
    edge block by slots, `NormReLU`) and with the formulas written out (GAPLayer edge by
    edge, plain batch norm then ReLU then mask) give the same losses, gradients, running
    statistics and weights, in double precision; `frozen`: with frozen batch norms, as
    in the joint phase. (SGD: Adam's first step turns the rounding noise of an exactly zero
    gradient, 1e-17 of either sign, into a full step of either sign.)"""
    from hepclust.ucluster.abcnet import GAPLayer, PointLinear
    from hepclust.ucluster.training import freeze_norms

    def run(reference: bool):
        torch.manual_seed(11)
        model = ABCNet(num_classes=5, k=4, pooling="sum").double().train()
        with torch.no_grad():
            # Off 0: where every edge of a channel is 0, ReLU(0 + bias) sits on its kink,
            # and the rounding noise of the bias's zero gradient decides the next step.
            for layer in (model.gap1, model.gap2):
                layer.bias.uniform_(-0.1, 0.1)
        if frozen:
            x, mask = batch([9, 4, 7], 9, seed=12)
            model(x.double(), mask)  # running statistics away from the start
            freeze_norms(model)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        with monkeypatch.context() as patch:
            if reference:
                patch.setattr(GAPLayer, "forward",
                              lambda self, x, index, valid, mask: reference_gap_layer(
                                  self, x, index, valid, mask, None))
                patch.setattr(PointLinear, "activate", lambda self, linear, mask=None: (
                    torch.relu(self.norm(linear, mask)) if mask is None
                    else torch.relu(self.norm(linear, mask)) * mask.unsqueeze(-1)))
            losses, gradients = [], []
            for seed in (13, 14):
                x, mask = with_garbage(*batch([9, 3, 12, 6], 12, seed=seed), extra=2)
                optimizer.zero_grad()
                logits, _ = model(x.double(), mask)
                loss = focal_loss(logits, torch.tensor([0, 1, 4, 2]))
                loss.backward()
                losses.append(loss.detach())
                gradients.append({name: p.grad.clone() for name, p in model.named_parameters()})
                optimizer.step()
        return losses, gradients, model.state_dict()

    losses, gradients, state = run(reference=False)
    expected_losses, expected_gradients, expected_state = run(reference=True)
    torch.testing.assert_close(losses, expected_losses)
    for step, expected in zip(gradients, expected_gradients, strict=True):
        for name, gradient in step.items():
            torch.testing.assert_close(gradient, expected[name], msg=name)
    for name, value in state.items():
        torch.testing.assert_close(value, expected_state[name], msg=name)
