from huiyuan.runtime.server import main
from services.member.app import SPEC

main(SPEC)
