# pyvhost's worker program: `python DIR/__main__.py NAME`, DIR holding the
# pyvhost_worker package (and only it: its directory is first on sys.path,
# and no other name there may shadow one of the app's modules).
from pyvhost_worker.zygote import zygote

zygote()
