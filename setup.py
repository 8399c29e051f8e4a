"""The one C extension: gateway._md5lanes (MD5 of up to 16 uploads at once, AVX-512).

Optional: without a C compiler the gateway hashes with hashlib alone (gateway/md5.py)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "gateway._md5lanes",
            sources=["gateway/_md5lanes.c"],
            extra_compile_args=["-O3", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,
        )
    ]
)
