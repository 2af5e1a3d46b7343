"""Run by test_lightning.py: two CPU processes (Lightning's "ddp" strategy, gloo), rank 1's
data turns NaN at step 6, stop_on="error". Each rank writes what it saw to OUT.<rank>.json."""

import json
import sys
import warnings

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn

from netdoctor.integrations.lightning import NetdoctorCallback

torch.set_num_threads(1)
warnings.simplefilter("ignore")


class Model(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        if self.global_rank == 1 and self.global_step >= 6:
            x = x * float("nan")  # only rank 1's data turns NaN
        return F.mse_loss(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


if __name__ == "__main__":
    log, out = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True)),
                                       batch_size=8)
    callback = NetdoctorCallback(log=log, stop_on="error", check_every=2)
    trainer = pl.Trainer(max_epochs=50, accelerator="cpu", devices=2, strategy="ddp",
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[callback])
    trainer.fit(Model(), data)
    with open(f"{out}.{trainer.global_rank}.json", "w") as f:
        json.dump({"global_step": trainer.global_step,
                   "stopped_by": None if callback.stopped_by is None else callback.stopped_by.rule,
                   "diagnoses": [d.rule for d in callback.diagnoses]}, f)
