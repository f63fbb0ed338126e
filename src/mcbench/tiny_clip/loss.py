"""The multi-positive contrastive loss.

Plain CLIP loss treats only the paired caption as positive; with captions that name one factor ("a card of
spades") many images in a batch satisfy a caption, and pushing them apart keeps the model from separating
fine factors such as card rank. Here the target of each row (column) is uniform over all its positives.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def multi_positive_loss(
    image_features: torch.Tensor, text_features: torch.Tensor, positive: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """Symmetric cross-entropy against uniform targets over positives.

    ``positive`` is a boolean (images × texts) mask; every image must have a positive. Texts without positives
    (distractor captions) act as negatives in the image-to-text direction only.
    """
    logits = logit_scale * image_features @ text_features.T
    pos = positive.float()
    image_to_text = -(pos / pos.sum(1, keepdim=True) * F.log_softmax(logits, dim=1)).sum(1).mean()
    has_pos = positive.any(0)
    pos_t = pos[:, has_pos]
    text_to_image = -(pos_t / pos_t.sum(0, keepdim=True) * F.log_softmax(logits[:, has_pos], dim=0)).sum(0).mean()
    return (image_to_text + text_to_image) / 2
