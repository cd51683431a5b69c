from huiyuan.runtime.server import main
from services.wallet.app import SPEC

main(SPEC)
