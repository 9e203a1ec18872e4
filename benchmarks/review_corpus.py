"""Labelled data for benchmarks/bench_review.py: written answers with known groups, and code with known copying.

Answers: one question (what happens to Nadaraya-Watson regression as the Gaussian kernel's width changes), answered
as a class would, in English, Chinese, Japanese and Korean. A label is one kind of answer in one language: an
instructor gives it the same points and comment. Members of a label are paraphrases, reorderings, typos and
additions of one answer; different labels are different claims (some close in wording, like "small width" and
"large width").

Code: independent solutions of three contract functions in different styles, and copies of some of them with the
disguises students use (identifiers renamed, comments and docstrings changed, statements reordered, spacing); two
students of masked_softmax both typed the textbook's version, a copy of a common source (labelled "book").
"""

ANSWERS: list[tuple[str, str]] = [
    # en: small width -> interpolates the nearest points, overfits
    ("en-small", "With a small width only the nearest training points get weight, so the estimate follows the noise "
                 "and overfits."),
    ("en-small", "with a SMALL width, only the nearest training points get any weight; the estimate follows the "
                 "noise and it overfits"),
    ("en-small", "A small width gives weight only to the nearest training point so the estimator overfits and follows "
                 "the noise."),
    ("en-small", "Small width: the estimate follows the noise (overfitting) because only the nearest training points "
                 "get weight."),
    ("en-small", "When the width is smal only nearest training points get weight -> it overfits, following noise."),
    # en: large width -> averages everything, underfits
    ("en-large", "A large width averages over all training points, so the prediction is nearly the global mean and "
                 "underfits."),
    ("en-large", "With a large width the kernel averages over all training points; the prediction becomes almost "
                 "the global mean, it underfits."),
    ("en-large", "large width = averages all training points, prediction ~ global mean, underfitting"),
    ("en-large", "If the width is large, all the training points are averaged and the prediction is close to the "
                 "global mean, so the model underfits."),
    # en: the width does not matter (wrong)
    ("en-nomatter", "The width does not matter because the attention weights are normalised by the softmax."),
    ("en-nomatter", "It does not matter what the width is, the attention weights are normalised by softmax anyway."),
    ("en-nomatter", "Width doesn't matter: the softmax normalises the attention weights."),
    # en: a bias-variance answer in other words
    ("en-tradeoff", "It is a bias-variance trade-off: a small sigma has low bias and high variance, a large sigma "
                    "has high bias and low variance."),
    ("en-tradeoff", "Bias-variance trade-off. Small sigma: low bias, high variance. Large sigma: high bias, low "
                    "variance."),
    ("en-tradeoff", "This is the bias variance tradeoff, small sigma means high variance and low bias and large "
                    "sigma means low variance, high bias."),
    # en: no answer worth the name
    ("en-idk", "I don't know."),
    ("en-idk", "i dont know"),
    # zh
    ("zh-small", "宽度很小时，只有最近的训练点有权重，所以估计会跟随噪声，产生过拟合。"),
    ("zh-small", "宽度小的时候只有最近的训练点有权重，估计跟随噪声，过拟合。"),
    ("zh-small", "当宽度很小时，估计会跟随噪声而过拟合，因为只有最近的训练点有权重。"),
    ("zh-large", "宽度很大时，所有训练点被平均，预测接近全局均值，欠拟合。"),
    ("zh-large", "如果宽度大，就会对所有训练点取平均，预测接近全局平均值，所以欠拟合。"),
    ("zh-large", "宽度大：所有训练点都被平均，预测几乎是全局均值（欠拟合）。"),
    ("zh-nomatter", "宽度没有影响，因为注意力权重经过softmax归一化。"),
    ("zh-nomatter", "宽度不重要，注意力权重反正会被softmax归一化。"),
    # ja
    ("ja-small", "幅が小さいと、最も近い訓練点だけに重みがつくので、推定がノイズに追従して過学習する。"),
    ("ja-small", "幅が小さい場合、最も近い訓練点にだけ重みがつき、推定はノイズに追従し過学習します。"),
    ("ja-small", "小さい幅では最も近い訓練点だけが重みを持つため、ノイズに追従して過学習になる。"),
    ("ja-large", "幅が大きいと、すべての訓練点が平均され、予測は全体の平均に近くなり、未学習になる。"),
    ("ja-large", "幅が大きい場合はすべての訓練点を平均するので、予測が全体の平均に近づき未学習になります。"),
    ("ja-nomatter", "注意の重みはソフトマックスで正規化されるので、幅は関係ない。"),
    ("ja-nomatter", "幅は関係ありません。注意の重みはソフトマックスで正規化されるからです。"),
    # ko
    ("ko-small", "폭이 작으면 가장 가까운 훈련 점만 가중치를 받아서 추정이 잡음을 따라가고 과적합된다."),
    ("ko-small", "폭이 작을 때는 가장 가까운 훈련 점에만 가중치가 주어져 추정이 잡음을 따라가며 과적합됩니다."),
    ("ko-small", "작은 폭에서는 가장 가까운 훈련 점만 가중치를 받으므로 잡음을 따라가 과적합된다."),
    ("ko-large", "폭이 크면 모든 훈련 점이 평균되어 예측이 전체 평균에 가까워지고 과소적합된다."),
    ("ko-large", "폭이 클 때는 모든 훈련 점을 평균하므로 예측이 전체 평균에 가까워져 과소적합됩니다."),
    ("ko-nomatter", "주의 가중치는 소프트맥스로 정규화되므로 폭은 상관없다."),
    ("ko-nomatter", "폭은 상관없습니다. 주의 가중치가 소프트맥스로 정규화되기 때문입니다."),
]


# A second question, written after the default threshold was chosen on ANSWERS and not used to tune it: with
# leave-one-out, is there still overfitting?
HELD_OUT: list[tuple[str, str]] = [
    ("en-no", "No. Leaving the point out means it cannot predict itself, so shrinking the width no longer lowers "
              "the loss."),
    ("en-no", "no - a point is left out, it can't predict itself, so a tiny width doesn't lower the loss anymore"),
    ("en-no", "Not anymore: because the point is left out it cannot predict itself and a small width stops "
              "lowering the loss."),
    ("en-no", "No, since each point is left out when predicting it, it can't predict itself; shrinking the width "
              "does not reduce the loss."),
    ("en-some", "Mostly no, but with few data points the chosen width can still be a bit too small and overfit a "
                "little."),
    ("en-some", "mostly not, though with few data points the width picked can still be slightly too small, so "
                "some overfitting remains"),
    ("en-some", "There is still a little overfitting when there are few data points: the width can be a bit too "
                "small."),
    ("en-yes", "Yes, the model still memorises the training data."),
    ("en-yes", "yes it still memorizes the training data"),
    ("en-cv", "Leave-one-out is cross-validation, which estimates the test error, so the width is chosen for "
              "generalisation."),
    ("en-cv", "LOO is a form of cross validation; it estimates test error, so we pick the width that generalises."),
    ("zh-no", "不会。留出这个点后它不能预测自己，所以缩小宽度不再降低损失。"),
    ("zh-no", "不会，因为点被留出，它无法预测自己，缩小宽度也不会降低损失。"),
    ("zh-no", "不再过拟合：被留出的点不能预测自己，宽度变小不能降低损失。"),
    ("zh-yes", "会，模型仍然会记住训练数据。"),
    ("zh-yes", "仍然会过拟合，模型记住了训练数据。"),
    ("ja-no", "いいえ。その点を除くので自分自身を予測できず、幅を小さくしても損失は下がらない。"),
    ("ja-no", "しない。点が除かれるため自分自身を予測できず、幅を小さくしても損失が下がらなくなる。"),
    ("ja-cv", "一つ抜き法は交差検証なのでテスト誤差を推定し、汎化する幅が選ばれる。"),
    ("ja-cv", "LOO は交差検証の一種で、テスト誤差を推定するため、汎化する幅を選べる。"),
    ("ko-no", "아니요. 그 점을 빼므로 자기 자신을 예측할 수 없어서 폭을 줄여도 손실이 줄지 않는다."),
    ("ko-no", "아니다. 점이 빠지기 때문에 자기 자신을 예측하지 못하고, 폭을 줄여도 손실이 내려가지 않는다."),
    ("ko-yes", "네, 모델은 여전히 훈련 데이터를 외운다."),
    ("ko-yes", "여전히 과적합된다. 모델이 훈련 데이터를 외우기 때문이다."),
]

# Independent solutions: (label, source). Each label is a different author.
NW_REGRESS = [
    ("a", '''def nw_regress(x_train, y_train, x_query, sigma):
    diffs = x_query[:, None] - x_train[None, :]
    weights = torch.softmax(-diffs ** 2 / (2 * sigma ** 2), dim=1)
    return weights @ y_train
'''),
    ("b", '''def nw_regress(x_train, y_train, x_query, sigma):
    out = []
    for q in x_query:
        k = torch.exp(-(q - x_train) ** 2 / (2 * sigma ** 2))
        out.append((k * y_train).sum() / k.sum())
    return torch.stack(out)
'''),
    ("c", '''def nw_regress(x_train, y_train, x_query, sigma):
    import numpy as np
    d2 = np.subtract.outer(np.asarray(x_query), np.asarray(x_train)) ** 2
    logits = -d2 / (2.0 * sigma * sigma)
    logits -= logits.max(axis=1, keepdims=True)
    w = np.exp(logits)
    w /= w.sum(axis=1, keepdims=True)
    return w.dot(np.asarray(y_train))
'''),
    ("d", '''def nw_regress(x_train, y_train, x_query, sigma):
    """Nadaraya-Watson with a Gaussian kernel."""
    X = x_query.reshape(-1, 1).repeat(1, len(x_train))
    attention = nn.functional.softmax(-((X - x_train) / sigma) ** 2 / 2, dim=1)
    return torch.matmul(attention, y_train)
'''),
    ("e", '''def nw_regress(x_train, y_train, x_query, sigma):
    n = x_query.shape[0]
    result = torch.zeros(n, dtype=y_train.dtype)
    for i in range(n):
        scores = -0.5 * ((x_query[i] - x_train) / sigma) ** 2
        scores = scores - scores.max()
        p = scores.exp()
        result[i] = torch.dot(p / p.sum(), y_train)
    return result
'''),
    ("f", '''def nw_regress(x_train, y_train, x_query, sigma):
    gauss = lambda u: torch.exp(-u ** 2 / 2)
    K = gauss((x_query.unsqueeze(1) - x_train.unsqueeze(0)) / sigma)
    return (K * y_train).sum(1) / K.sum(1)
'''),
]

LOO_LOSS = [
    ("g", '''def loo_loss(x, y, sigma):
    d = x[:, None] - x[None, :]
    logits = -d ** 2 / (2 * sigma ** 2)
    logits = logits - torch.diag(torch.full((len(x),), float("inf")))
    w = torch.softmax(logits, dim=1)
    pred = w @ y
    return ((pred - y) ** 2).mean()
'''),
    ("h", '''def loo_loss(x, y, sigma):
    total = 0.0
    for i in range(len(x)):
        mask = torch.arange(len(x)) != i
        k = torch.exp(-(x[i] - x[mask]) ** 2 / (2 * sigma ** 2))
        yhat = (k * y[mask]).sum() / k.sum()
        total = total + (yhat - y[i]) ** 2
    return total / len(x)
'''),
    ("i", '''def loo_loss(x, y, sigma):
    n = len(x)
    K = torch.exp(-0.5 * ((x.view(-1, 1) - x.view(1, -1)) / sigma) ** 2)
    K = K * (1 - torch.eye(n, dtype=K.dtype))
    predictions = K.matmul(y) / K.sum(dim=1)
    errors = predictions - y
    return torch.mean(errors * errors)
'''),
    ("j", '''def loo_loss(x, y, sigma):
    losses = []
    for i, (xi, yi) in enumerate(zip(x, y)):
        others_x = torch.cat([x[:i], x[i + 1:]])
        others_y = torch.cat([y[:i], y[i + 1:]])
        a = torch.softmax(-(xi - others_x) ** 2 / (2 * sigma ** 2), dim=0)
        losses.append((a @ others_y - yi) ** 2)
    return torch.stack(losses).mean()
'''),
]

MASKED_SOFTMAX = [
    ("k", '''def masked_softmax(X, valid_lens):
    if valid_lens is None:
        return torch.softmax(X, dim=-1)
    shape = X.shape
    lens = valid_lens if valid_lens.dim() > 1 else valid_lens[:, None].expand(shape[0], shape[1])
    positions = torch.arange(shape[-1])
    keep = positions < lens.unsqueeze(-1)
    return torch.softmax(X.masked_fill(~keep, -1e6), dim=-1)
'''),
    ("l", '''def masked_softmax(X, valid_lens):
    out = torch.empty_like(X)
    for b in range(X.shape[0]):
        for q in range(X.shape[1]):
            if valid_lens is None:
                n = X.shape[2]
            elif valid_lens.dim() == 1:
                n = int(valid_lens[b])
            else:
                n = int(valid_lens[b, q])
            row = torch.full((X.shape[2],), -1e6, dtype=X.dtype)
            row[:n] = X[b, q, :n]
            out[b, q] = torch.softmax(row, dim=0)
    return out
'''),
    ("m", '''def masked_softmax(X, valid_lens):
    import numpy as np
    x = np.array(X, dtype=float)
    if valid_lens is not None:
        v = np.array(valid_lens)
        if v.ndim == 1:
            v = np.repeat(v[:, None], x.shape[1], axis=1)
        x[np.arange(x.shape[2]) >= v[..., None]] = -1e6
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
'''),
    # Two students who both typed the textbook's version (d2l 11.3.1.1): copies of a common source.
    ("book", '''def masked_softmax(X, valid_lens):
    def _sequence_mask(X, valid_len, value=0):
        maxlen = X.size(1)
        mask = torch.arange((maxlen), dtype=torch.float32, device=X.device)[None, :] < valid_len[:, None]
        X[~mask] = value
        return X
    if valid_lens is None:
        return nn.functional.softmax(X, dim=-1)
    else:
        shape = X.shape
        if valid_lens.dim() == 1:
            valid_lens = torch.repeat_interleave(valid_lens, shape[1])
        else:
            valid_lens = valid_lens.reshape(-1)
        X = _sequence_mask(X.reshape(-1, shape[-1]), valid_lens, value=-1e6)
        return nn.functional.softmax(X.reshape(shape), dim=-1)
'''),
    ("book", '''def masked_softmax(X, valid_lens):
    """Softmax over the last axis, masking elements past each valid length."""
    def sequence_mask(X, valid_len, value=0):
        maxlen = X.size(1)
        mask = torch.arange(maxlen, dtype=torch.float32, device=X.device)[None, :] < valid_len[:, None]
        X[~mask] = value
        return X

    if valid_lens is None:
        return nn.functional.softmax(X, dim=-1)
    shape = X.shape
    if valid_lens.dim() == 1:
        valid_lens = torch.repeat_interleave(valid_lens, shape[1])
    else:
        valid_lens = valid_lens.reshape(-1)
    X = sequence_mask(X.reshape(-1, shape[-1]), valid_lens, value=-1e6)
    return nn.functional.softmax(X.reshape(shape), dim=-1)
'''),
]

# Copies: (label of the source, disguised source). Pairs (copy, source) and (copy, copy of the same source) are
# "copied"; every other pair is independent.
COPIES = [
    ("b", '''def nw_regress(train_x, train_y, queries, width):
    # my own solution!!
    predictions = []
    for query in queries:
        kernel = torch.exp(-(query - train_x) ** 2 / (2 * width ** 2))
        predictions.append((kernel * train_y).sum() / kernel.sum())
    return torch.stack(predictions)
'''),
    ("c", '''def nw_regress(x_train, y_train, x_query, sigma):
    """Regression by attention pooling."""
    import numpy as np
    queries, keys = np.asarray(x_query), np.asarray(x_train)
    sq = np.subtract.outer(queries, keys) ** 2
    z = -sq / (2.0 * sigma * sigma)
    z -= z.max(axis=1, keepdims=True)
    att = np.exp(z)
    att /= att.sum(axis=1, keepdims=True)
    return att.dot(np.asarray(y_train))
'''),
    ("e", '''def nw_regress(x_train, y_train, x_query, sigma):
    m = x_query.shape[0]
    out = torch.zeros(m, dtype=y_train.dtype)
    for j in range(m):
        # Gaussian scores, shifted for stability
        s = -0.5 * ((x_query[j] - x_train) / sigma) ** 2
        s = s - s.max()
        e = s.exp()
        out[j] = torch.dot(e / e.sum(), y_train)
    return out
'''),
    ("e", '''def nw_regress(xt, yt, xq, s):
    count = xq.shape[0]
    preds = torch.zeros(count, dtype=yt.dtype)
    for idx in range(count):
        sc = -0.5 * ((xq[idx] - xt) / s) ** 2
        sc = sc - sc.max()
        ex = sc.exp()
        preds[idx] = torch.dot(ex / ex.sum(), yt)
    return preds
'''),
    ("h", '''def loo_loss(x, y, sigma):
    n = len(x)
    acc = 0.0
    for t in range(n):
        keep = torch.arange(n) != t
        kern = torch.exp(-(x[t] - x[keep]) ** 2 / (2 * sigma ** 2))
        acc = acc + ((kern * y[keep]).sum() / kern.sum() - y[t]) ** 2
    return acc / n
'''),
    ("i", '''def loo_loss(inputs, targets, bandwidth):
    K = torch.exp(-0.5 * ((inputs.view(-1, 1) - inputs.view(1, -1)) / bandwidth) ** 2)
    count = len(inputs)
    K = K * (1 - torch.eye(count, dtype=K.dtype))
    residual = K.matmul(targets) / K.sum(dim=1) - targets
    return torch.mean(residual * residual)
'''),
]

COPIES += [
    ("k", '''def masked_softmax(scores, lengths):
    if lengths is None:
        return torch.softmax(scores, dim=-1)
    size = scores.shape
    idx = torch.arange(size[-1])
    lengths = lengths if lengths.dim() > 1 else lengths[:, None].expand(size[0], size[1])
    valid = idx < lengths.unsqueeze(-1)
    return torch.softmax(scores.masked_fill(~valid, -1e6), dim=-1)
'''),
    ("m", '''def masked_softmax(X, valid_lens):
    import numpy as np
    arr = np.array(X, dtype=float)
    if valid_lens is not None:
        lens = np.array(valid_lens)
        if lens.ndim == 1:
            lens = np.repeat(lens[:, None], arr.shape[1], axis=1)
        arr[np.arange(arr.shape[2]) >= lens[..., None]] = -1e6
    ex = np.exp(arr - arr.max(axis=-1, keepdims=True))
    return ex / ex.sum(axis=-1, keepdims=True)
'''),
]

TEMPLATES = {
    "nw_regress": '''def nw_regress(x_train, y_train, x_query, sigma):
    """Nadaraya-Watson regression with a Gaussian kernel of width sigma: the prediction at each query."""
    raise NotImplementedError
''',
    "masked_softmax": '''def masked_softmax(X, valid_lens):
    raise NotImplementedError
''',
    "loo_loss": '''def loo_loss(x, y, sigma):
    """The leave-one-out squared loss of Nadaraya-Watson regression on (x, y) at width sigma."""
    raise NotImplementedError
''',
}
