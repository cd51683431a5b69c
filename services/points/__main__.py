from huiyuan.runtime.server import main
from services.points.app import SPEC

main(SPEC)
