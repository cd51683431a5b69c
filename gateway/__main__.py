from gateway.app import SPEC
from huiyuan.runtime.server import main

main(SPEC)
