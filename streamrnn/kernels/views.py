"""C-contiguous views into a flat state array, built without ``reshape``'s checks.

Numba's ``reshape`` goes through a generic helper (an opaque call that the optimiser cannot see
through) and a model step takes some forty views of its blocks; building the array struct directly
costs a fraction of that (the figures are in docs/design.md).
The view itself checks nothing: the caller makes sure that ``start + prod(shape)`` lies within
the (1-D, C-contiguous) array (the block table's bounds are checked where it is laid out,
``streamrnn.layout.check_table``).

A view does not own its memory (no NRT meminfo), so it and every slice taken of it skip the
reference counting that numba does for each array it creates: an atomic increment and decrement
per slice (some 150 views and slices per event). It stays valid while the array it views lives, which is the whole kernel call: a kernel
must not keep one beyond its call, and none does (a view returned to Python would not keep its
array alive).
"""

from numba import types
from numba.core import cgutils
from numba.core.imputils import impl_ret_untracked
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array


@intrinsic
def view(typingctx, arr, start, shape):
    """``arr[start : start + prod(shape)].reshape(shape)`` for a 1-D C-contiguous ``arr``."""
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and arr.layout == "C"):
        return None
    if not (isinstance(shape, types.BaseTuple) and all(isinstance(d, types.Integer) for d in shape)):
        return None
    ndim = len(shape)
    retty = arr.copy(ndim=ndim, layout="C")

    def codegen(context, builder, sig, args):
        src = make_array(sig.args[0])(context, builder, args[0])
        out = make_array(retty)(context, builder)
        intp = context.get_value_type(types.intp)
        dims = [context.cast(builder, d, ty, types.intp) for d, ty in
                zip(cgutils.unpack_tuple(builder, args[2]), sig.args[2])]
        offset = context.cast(builder, args[1], sig.args[1], types.intp)
        itemsize = context.get_constant(types.intp, context.get_abi_sizeof(context.get_data_type(arr.dtype)))
        strides = [None] * ndim
        step = itemsize
        for k in range(ndim - 1, -1, -1):
            strides[k] = step
            step = builder.mul(step, dims[k])
        data = builder.gep(src.data, [offset])
        populate_array(out, data=data, shape=cgutils.pack_array(builder, dims, intp),
                       strides=cgutils.pack_array(builder, strides, intp), itemsize=itemsize,
                       meminfo=cgutils.get_null_value(src.meminfo.type), parent=None)
        return impl_ret_untracked(context, builder, retty, out._getvalue())

    return retty(arr, start, shape), codegen
