"""Local means over s x s boxes (zero outside the image) from one integral image per slice.

For each slice the kernel builds the integral image ``I[y, x, c] = sum of
image[:y, :x, c]`` in float64 (scratch owned by the caller), then every box
sum is four reads: ``I[y1, x1] - I[y0, x1] - I[y1, x0] + I[y0, x0]`` with the box
clipped to the image.  Dividing by the full ``s * s`` treats the outside as zero.
The cost per size is independent of ``s``.

Compiler directives are set once, in setup.py.
"""


def box_means(
    const float[:, :, :, ::1] images not None,   # IN      (N, H, W, C)
    const Py_ssize_t[::1] sizes not None,        # IN      (S,) odd box sizes
    float[:, :, :, ::1] out not None,            # OUT     (N, H, W, >= offset + C * S): size j in channels
    double[:, :, ::1] integral not None,         # SCRATCH (H + 1, W + 1, C)       offset + [j*C, (j+1)*C)
    Py_ssize_t offset=0,
):
    """Write the s x s box mean of every channel of every image into ``out``, from channel ``offset`` on."""
    cdef Py_ssize_t N = images.shape[0], H = images.shape[1], W = images.shape[2], C = images.shape[3]
    cdef Py_ssize_t S = sizes.shape[0]
    cdef Py_ssize_t n, y, x, c, j, r, y0, y1, x0, x1
    cdef double inv_area, acc
    if out.shape[0] != N or out.shape[1] != H or out.shape[2] != W or offset < 0 or out.shape[3] < offset + C * S:
        raise ValueError(f"out must have shape {(N, H, W)} + (at least {offset + C * S} channels,)")
    if integral.shape[0] != H + 1 or integral.shape[1] != W + 1 or integral.shape[2] != C:
        raise ValueError(f"integral must have shape {(H + 1, W + 1, C)}")
    for j in range(S):
        if sizes[j] < 1 or sizes[j] % 2 == 0:
            raise ValueError(f"box sizes must be odd and >= 1, got {sizes[j]}")
    if N * H * W * C == 0:
        return
    with nogil:
        for n in range(N):
            for x in range(W + 1):
                for c in range(C):
                    integral[0, x, c] = 0.0
            for y in range(H):
                for c in range(C):
                    integral[y + 1, 0, c] = 0.0
                for c in range(C):
                    # running sum of row y: one dependent add per pixel (not three)
                    acc = 0.0
                    for x in range(W):
                        acc += images[n, y, x, c]
                        integral[y + 1, x + 1, c] = integral[y, x + 1, c] + acc
            for j in range(S):
                r = sizes[j] // 2
                inv_area = 1.0 / <double>(sizes[j] * sizes[j])
                for y in range(H):
                    y0 = y - r if y >= r else 0
                    y1 = y + r + 1 if y + r + 1 <= H else H
                    for x in range(W):
                        x0 = x - r if x >= r else 0
                        x1 = x + r + 1 if x + r + 1 <= W else W
                        for c in range(C):
                            acc = (integral[y1, x1, c] - integral[y0, x1, c]
                                   - integral[y1, x0, c] + integral[y0, x0, c])
                            out[n, y, x, offset + j * C + c] = <float>(acc * inv_area)


def copy_channels(
    const float[:, :, :, ::1] images not None,   # IN  (N, H, W, C)
    float[:, :, :, ::1] out not None,            # OUT (N, H, W, >= offset + C)
    Py_ssize_t offset,
):
    """Copy every channel of ``images`` into channels ``offset .. offset + C - 1`` of ``out``."""
    cdef Py_ssize_t N = images.shape[0], H = images.shape[1], W = images.shape[2], C = images.shape[3]
    cdef Py_ssize_t n, y, x, c
    if out.shape[0] != N or out.shape[1] != H or out.shape[2] != W or offset < 0 or out.shape[3] < offset + C:
        raise ValueError(f"out must have shape {(N, H, W)} + (at least {offset + C} channels,)")
    with nogil:
        for n in range(N):
            for y in range(H):
                for x in range(W):
                    for c in range(C):
                        out[n, y, x, offset + c] = images[n, y, x, c]
