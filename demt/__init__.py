"""DeMT: learned device-guided music transfer (arXiv 2511.17136).

A HTDemucs-style hybrid model whose frequency branch is modulated by FiLM layers driven by a
device embedding; it renders music as heard through a given device.
"""
