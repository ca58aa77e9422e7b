"""`latent_scatter.png`: test codes in 2-D, coloured by their label.

The codes are projected on their first two principal components (for a
2-D code, its own axes), one dot per example, with a legend of the classes.
"""

import numpy as np
from PIL import Image
from PIL import ImageDraw

SIZE = 480
_MARGIN = 24
_LEGEND_WIDTH = 120
_DOT = 2
# Tableau's 10 colours; classes beyond 10 reuse them.
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
           (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127),
           (188, 189, 34), (23, 190, 207))


def project_2d(codes):
  """`[N, d]` codes -> `[N, 2]`: their first two principal components.

  Codes with one dimension get a zero second coordinate; the projection
  is deterministic (each component's sign makes its largest loading
  positive).
  """
  codes = np.asarray(codes, np.float64)
  centred = codes - codes.mean(axis=0)
  if codes.shape[1] == 1:
    return np.concatenate([centred, np.zeros_like(centred)], axis=1)
  _, _, vt = np.linalg.svd(centred, full_matrices=False)
  components = vt[:2]
  signs = np.sign(components[np.arange(2),
                             np.argmax(np.abs(components), axis=1)])
  return centred @ (components * signs[:, None]).T


def latent_scatter(codes, labels, class_names=None):
  """Draws the scatter plot.

  Args:
    codes: `[N, d]` test codes (the posterior means).
    labels: `[N]` int class ids.
    class_names: the name of each class id, or None for the ids.

  Returns:
    `[SIZE, SIZE + legend, 3]` uint8 picture.
  """
  points = project_2d(codes)
  labels = np.asarray(labels).astype(int)
  low, high = points.min(axis=0), points.max(axis=0)
  span = np.where(high > low, high - low, 1.0)
  pixels = _MARGIN + (points - low) / span * (SIZE - 2 * _MARGIN)
  picture = Image.new("RGB", (SIZE + _LEGEND_WIDTH, SIZE), "white")
  draw = ImageDraw.Draw(picture)
  draw.rectangle([_MARGIN - 4, _MARGIN - 4, SIZE - _MARGIN + 4,
                  SIZE - _MARGIN + 4], outline=(200, 200, 200))
  for (x, y), label in zip(pixels, labels):
    y = SIZE - y  # Up is positive.
    draw.ellipse([x - _DOT, y - _DOT, x + _DOT, y + _DOT],
                 fill=PALETTE[label % len(PALETTE)])
  draw.text((_MARGIN, 4), "test codes: PC1 (right), PC2 (up)", fill="black")
  for row, label in enumerate(sorted(set(labels.tolist()))[:40]):
    top = _MARGIN + 14 * row
    draw.rectangle([SIZE + 4, top, SIZE + 12, top + 8],
                   fill=PALETTE[label % len(PALETTE)])
    name = (class_names[label] if class_names is not None
            and label < len(class_names) else str(label))
    draw.text((SIZE + 16, top - 2), str(name)[:14], fill="black")
  return np.asarray(picture, np.uint8)
