from huiyuan.runtime.server import main
from services.campaign.app import SPEC

main(SPEC)
