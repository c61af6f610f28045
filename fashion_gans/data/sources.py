"""Image sources shared by the hdf5-backed datasets (FISB, handbags/shoes) and their Hub versions.

* :class:`LazyH5Array` - one dataset of an hdf5 file, opened lazily and re-opened in each process, so a
  dataset object can be pickled into ``DataLoader`` workers (h5py handles cannot cross a fork safely);
  or the whole array held in memory.
* :class:`HubImageRows` - images in the ``image`` column of a Hugging Face dataset, addressed by position
  or by the original dataset index stored next to them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .io import DataError

__all__ = ["LazyH5Array", "HubImageRows"]


class LazyH5Array:
    """Fork-safe, lazily opened view of the dataset ``key`` of the hdf5 file ``path``.

    ``array`` (optional) is the data already read into memory; then the file is never opened again.
    :meth:`data` returns the array-like (the open ``h5py.Dataset`` or the in-memory array).
    """

    def __init__(self, path: str | os.PathLike, key: str, array: np.ndarray | None = None) -> None:
        self.path = Path(path)
        self.key = key
        self._array = array
        self._file: Any = None
        self._dataset: Any = None
        self._pid: int | None = None

    @property
    def in_memory(self) -> bool:
        return self._array is not None

    def data(self):
        if self._array is not None:
            return self._array
        if self._file is None or self._pid != os.getpid():
            import h5py

            try:
                self._file = h5py.File(self.path, "r")
            except OSError as exc:
                raise DataError(f"{self.path}: not a readable hdf5 file ({exc})") from exc
            if self.key not in self._file:
                raise DataError(f"{self.path}: missing key {self.key!r}")
            self._dataset = self._file[self.key]
            self._pid = os.getpid()
        return self._dataset

    def __getitem__(self, index):
        return self.data()[index]

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = self._dataset = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_file"] = state["_dataset"] = None
        state["_pid"] = None
        return state


class HubImageRows:
    """The ``image`` column of rows ``rows`` of a Hugging Face dataset, as ``uint8`` arrays in ``mode``.

    ``indices[k]`` is the original dataset index of the image in row ``rows[k]``.  :meth:`get` reads by
    position ``k``, :meth:`get_index` by original index.
    """

    def __init__(self, ds, rows, indices, mode: str = "RGB") -> None:
        self.ds = ds
        self.rows = np.asarray(rows, dtype=np.int64)
        self.indices = np.asarray(indices, dtype=np.int64)
        if self.rows.shape != self.indices.shape:
            raise ValueError(f"rows and indices differ in length: {self.rows.shape} vs {self.indices.shape}")
        self.mode = mode
        self._row_of = {int(ix): int(r) for r, ix in zip(self.rows, self.indices)}

    def __len__(self) -> int:
        return len(self.rows)

    def _read(self, row: int) -> np.ndarray:
        image = self.ds[int(row)]["image"]
        if image is None:
            raise DataError(f"Hub dataset row {row} has no image")
        return np.array(image.convert(self.mode), dtype=np.uint8)

    def get(self, k: int) -> tuple[np.ndarray, int]:
        """(image, original index) of position ``k``."""
        return self._read(self.rows[k]), int(self.indices[k])

    def get_index(self, index: int) -> np.ndarray:
        """The image whose original index is ``index``."""
        try:
            row = self._row_of[int(index)]
        except KeyError:
            raise IndexError(f"index {index} is not in this Hub split") from None
        return self._read(row)
