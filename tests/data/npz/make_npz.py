#!/usr/bin/python3
"""Writes the npz fixtures of tests/retinanet/test_npz.cpp with numpy itself (run once; the
outputs are committed). Every value is a formula of np.arange, so the test asserts the formula,
not a copy of these files.

  stored.npz      np.savez            (ZIP_STORED, zip64 extra fields in the local headers)
  compressed.npz  np.savez_compressed (deflate), the same arrays
  streamed.npz    zipfile on an unseekable stream (data descriptors, flag bit 3) holding .npy
                  versions 1.0, 2.0 and 3.0, one member stored and two deflated
"""
import io
import os
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def arrays():
    return {
        "f32": np.arange(6, dtype="<f4").reshape(2, 3) * np.float32(0.5),   # 0.5 i
        "f64": np.arange(24, dtype="<f8").reshape(2, 3, 4) / 8 - 1,         # i / 8 - 1
        "i8": 2**40 - 3 * np.arange(5, dtype="<i8"),                        # 2^40 - 3 i
        "i4": np.arange(4, dtype="<i4") - 2,                                # i - 2
        "i2": np.arange(3, dtype="<i2") - 1000,                             # i - 1000
        "i1": (np.arange(3) - 128).astype("i1"),                            # i - 128
        "u4": np.arange(3, dtype="<u4") + 4000000000,                       # i + 4e9
        "u2": np.arange(3, dtype="<u2") + 65000,                            # i + 65000
        "u1": np.arange(3, dtype="u1") + 250,                               # i + 250
        "b1": np.arange(4) % 2 == 0,                                        # i even
        "scalar": np.float32(1.25),                                         # shape ()
        "step": np.int64(7),                                                # shape ()
        "empty": np.zeros((0, 3), dtype="<f4"),
        "nested/name.with.dots": np.arange(2, dtype="<f4"),                # i
    }


class Unseekable(io.RawIOBase):
    """A write-only stream without seek/tell: zipfile then writes data descriptors."""

    def __init__(self):
        self.buffer = bytearray()

    def writable(self):
        return True

    def write(self, b):
        self.buffer += b
        return len(b)


def main():
    np.savez(os.path.join(HERE, "stored.npz"), **arrays())
    np.savez_compressed(os.path.join(HERE, "compressed.npz"), **arrays())

    stream = Unseekable()
    members = [("v1", (1, 0), zipfile.ZIP_STORED), ("v2", (2, 0), zipfile.ZIP_DEFLATED),
               ("v3", (3, 0), zipfile.ZIP_DEFLATED)]
    with zipfile.ZipFile(stream, mode="w") as zf:
        for k, (name, version, method) in enumerate(members):
            a = np.arange(6, dtype="<f4").reshape(3, 2) + 10 * (k + 1)      # i + 10 (k + 1)
            info = zipfile.ZipInfo(name + ".npy", date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = method
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, a, version=version)
    with open(os.path.join(HERE, "streamed.npz"), "wb") as f:
        f.write(bytes(stream.buffer))


if __name__ == "__main__":
    main()
