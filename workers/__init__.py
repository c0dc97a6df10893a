"""Worker processes: model build/load, step-wise decoder, snapshots, the worker loop.

Kept light on purpose: importing `workers` imports no torch; import the submodules you need.
"""
