"""The contrastive photo model stacked into the matcher, on the synthetic marketplace with photos
(BENCHMARKS.md, issue #5). Slow: ~25 minutes on 2 cores.

    .venv/bin/python scripts/bench_contrastive.py 3000 out/contrastive.json
"""
import json, sys, time
import pandas as pd
from dupsearch.synth import generate_marketplace, split_pairs
from dupsearch.models import DuplicateMatcher, MatcherConfig, binary_metrics
from dupsearch.models.stacking import StackingConfig
n = int(sys.argv[1]); out = sys.argv[2]
t = time.time()
market = generate_marketplace(n, seed=0, photos_dir=f"out/contrastive/photos{n}")
train, valid, test = split_pairs(market, fractions=(0.6, 0.2, 0.2), seed=0)
train = pd.concat([train, valid], ignore_index=True)
print(f"{len(market.listings)} listings, train {len(train)} test {len(test)} pairs, {time.time()-t:.0f}s", flush=True)
res = {"n_listings": n, "n_train": len(train), "n_test": len(test)}
for name, stacking in (("photo hashes + colorhist", StackingConfig()),
                       ("+ contrastive resnet18", StackingConfig(image_model={"backbone": "resnet18", "image_size": 96, "epochs": 2}, folds=3))):
    t = time.time()
    m = DuplicateMatcher(MatcherConfig(n_models=1, stacking=stacking)).fit(market.listings, train)
    fit_s = time.time() - t
    p = m.predict_proba(market.listings, test)
    met = binary_metrics(test.label.to_numpy(), p, threshold=m.threshold_)
    res[name] = {"cv_pr_auc": m.metrics_["cv"]["oof"]["pr_auc"], "test_pr_auc": met["pr_auc"], "test_f1": met["f1"],
                 "train_seconds": fit_s, "stacking": m.metrics_.get("stacking")}
    print(name, json.dumps(res[name], default=float)[:600], flush=True)
json.dump(res, open(out, "w"), indent=1, default=float)
