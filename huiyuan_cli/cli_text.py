"""What the `huiyuan` command says, in Chinese (the default) and in English.

The language is `--lang zh|en` on the command line, else HUIYUAN_LANG, else Chinese.
Every sentence the command prints, its refusals and its usage are in TEXT below: a key,
then the Chinese and the English side by side, with the same {placeholders}. A table
rather than gettext: gettext keeps English in the code and Chinese in a .po catalogue
that has to be compiled to .mo, shipped in the wheel and kept in step by hand; here the
two translations of a sentence sit on adjacent lines of one file, there is no build
step, and tests/test_cli.py checks that every key used exists, has both languages and
the same placeholders in each. The values of the contracts' enums (an order's state, a
tender) are in huiyuan/runtime/words.py, which the exports use too.
"""

import os
import unicodedata

from huiyuan.runtime import words
from huiyuan.runtime.convert import enum_word

LANGUAGES = ("zh", "en")
_chosen: str | None = None  # --lang, set by cli.main for one run


def language() -> str:
    """zh or en: --lang, else HUIYUAN_LANG, else zh."""
    return _chosen or _language_of(os.environ.get("HUIYUAN_LANG", "")) or "zh"


def choose(lang: str | None) -> None:
    """The language of this run (None: HUIYUAN_LANG's, or Chinese)."""
    global _chosen
    _chosen = lang


def _language_of(text: str) -> str | None:
    """zh or en of what a user may write: zh, zh-CN, zh_CN.UTF-8, en, en-US...; None otherwise."""
    text = text.strip().lower()
    return next((lang for lang in LANGUAGES if text.startswith(lang)), None)


def take_language(argv: list[str]) -> tuple[str | None, list[str]]:
    """(--lang's language or None, argv without it): --lang may stand anywhere on the line,
    and is known before the parser (whose usage is in that language) is built."""
    rest, lang = [], None
    words_left = iter(argv)
    for word in words_left:
        value = (
            word[len("--lang=") :] if word.startswith("--lang=") else next(words_left, "") if word == "--lang" else None
        )
        if value is None:
            rest.append(word)
            continue
        lang = _language_of(value)
        if lang is None:
            raise SystemExit(f"--lang {value}: zh（中文）| en（English）")
    return lang, rest


def t(key: str, /, **fields) -> str:
    """The sentence of key in this run's language, its {fields} filled in."""
    zh, en = TEXT[key]
    return (en if language() == "en" else zh).format(**fields)


def headings(key: str) -> tuple[str, ...]:
    """The column headings of a table printed (key's value is a pair of tuples)."""
    zh, en = TEXT[key]
    return en if language() == "en" else zh


def enum_text(enum_type, number: int) -> str:
    """An enum value as printed: its Chinese word, or in English the word the options take
    (wechat-pay, needs-attention)."""
    word = enum_word(enum_type, number)
    return word if language() == "en" else words.chinese(enum_type.Name(number), word)


def width(text: str) -> int:
    """Columns text takes in a terminal: a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def left(text: str, columns: int) -> str:
    return text + " " * max(0, columns - width(text))


def right(text: str, columns: int) -> str:
    return " " * max(0, columns - width(text)) + text


TEXT = {
    # --- usage: huiyuan -h --------------------------------------------------------------
    "usage_prefix": ("用法：", "usage: "),
    "heading_positional": ("参数", "positional arguments"),
    "heading_options": ("选项", "options"),
    "heading_commands": ("命令", "commands"),
    "help_help": ("显示本帮助并退出", "show this help and exit"),
    "help_lang": (
        "输出语言：zh（中文，默认）或 en（英文）；也可设环境变量 HUIYUAN_LANG",
        "the language: zh (Chinese, the default) or en; or set HUIYUAN_LANG",
    ),
    "usage_hint": ("（用法见 {prog} -h）", "(see {prog} -h)"),
    "huiyuan_description": (
        "huiyuan（会员）：连锁门店的会员系统。\n"
        "  huiyuan up                          在本机运行全部服务（SQLite，示例数据）\n"
        "  huiyuan migrate [服务 ...]           执行各服务的数据库迁移\n"
        "  huiyuan member find --phone P | --card N | --id M    查会员（直连会员服务）\n"
        "  huiyuan member list [--org 路径] [--limit N]          某节点下的会员及其等级\n"
        "  huiyuan wallet balance|statement --phone P | --card N | --id M   储值余额与流水\n"
        "  huiyuan pos 命令 ...                  收银台与门店、区域后台（经网关）：huiyuan pos -h\n"
        "  huiyuan key issue --org 路径 --role 角色 [--label 备注]   直接写入网关数据库的密钥\n"
        "                                      （第一把总部密钥）",
        "huiyuan (会员): the membership system of a store chain.\n"
        "  huiyuan up                          every service on this machine, SQLite, demo data\n"
        "  huiyuan migrate [SERVICE ...]       apply each service's database migrations\n"
        "  huiyuan member find --phone P | --card N | --id M    a member (the member service itself)\n"
        "  huiyuan member list [--org PATH] [--limit N]          the members under a node, with tiers\n"
        "  huiyuan wallet balance|statement --phone P | --card N | --id M   stored value and its entries\n"
        "  huiyuan pos COMMAND ...             a till and the back offices, through the gateway: huiyuan pos -h\n"
        "  huiyuan key issue --org PATH --role ROLE [--label L]   a gateway credential, written straight\n"
        "                                      to the gateway's database (the first HQ key)",
    ),
    "help_up": ("在本机运行全部服务，并写入示例数据", "run every service on this machine with demo data"),
    "help_no_demo": ("不写入示例数据", "do not seed demo data"),
    "help_migrate": ("执行数据库迁移", "apply database migrations"),
    "help_rebuild_reports": (
        "从原始记录重算报表汇总（各服务的 rollup）",
        "recompute the reports' rollups from the raw records",
    ),
    "rebuilt_reports": (
        "{service}：重算 {count} 条贡献，用时 {seconds} 秒",
        "{service}: {count} contributions recounted in {seconds} s",
    ),
    "help_report": (
        "report：sales 经营概况 | members 会员分析 | behaviour 消费行为 | liability 负债 | campaigns 营销效果 | staff 绩效",
        "report: sales | members | behaviour | liability | campaigns | staff",
    ),
    "help_period": (
        "report：期间 day|week|month|quarter|year，含 --date（默认今天）；或用 --month、--from/--to",
        "report: the period day|week|month|quarter|year holding --date (today by default); or --month, --from/--to",
    ),
    "help_services": ("要迁移的服务（默认全部）", "the services to migrate (default: all)"),
    "help_member": ("查会员（直连会员服务）", "look members up (the member service itself)"),
    "help_wallet": ("会员的储值（直连会员与储值服务）", "a member's stored value (the member and wallet services)"),
    "help_person": (
        "直接创建后台人员账号（初始化用；密码从 HUIYUAN_PERSON_PASSWORD、终端或标准输入读取）",
        "create a back-office person directly (bootstrap; the password from HUIYUAN_PERSON_PASSWORD, the terminal or stdin)",
    ),
    "help_person_login": ("登录账号", "the login"),
    "help_person_name": ("姓名", "the person's name"),
    "person_password_prompt": ("初始密码：", "first password: "),
    "person_created": ("已创建人员 {person_id}，账号 {login}", "person {person_id} created, login {login}"),
    "help_key": ("直接签发网关密钥（初始化用）", "issue a gateway credential directly (bootstrap)"),
    "help_phone": ("手机号", "the phone number"),
    "help_card": ("卡号", "the card number"),
    "help_member_id": ("会员号", "the member id"),
    "help_org": ("该组织节点之下（默认：密钥所在节点）", "under this org node (default: the key's)"),
    "help_limit": ("最多列出多少条", "at most this many"),
    "help_key_org": ("密钥所属节点，例如 hq/east/sh-001", "the key's org node, such as hq/east/sh-001"),
    "help_role": ("角色", "the role"),
    "help_label": ("备注，例如 店长", "a label, such as 店长"),
    "metavar_command": ("命令", "COMMAND"),
    # --- argparse's own refusals, as the chosen language says them ----------------------
    "arg_error": ("{prog}：{message}", "{prog}: {message}"),
    "arg_required": ("缺少参数：{names}", "the following arguments are required: {names}"),
    "arg_unrecognized": ("无法识别的参数：{words}", "unrecognized arguments: {words}"),
    "arg_expects_value": ("{option} 后面需要一个值", "{option} expects a value"),
    "arg_invalid_choice": (
        "{option}：没有 {value} 这一项；可选：{choices}",
        "{option}: {value} is not one of {choices}",
    ),
    "arg_invalid_command": ("没有 {value} 这个命令{guess}", "there is no command {value}{guess}"),
    "arg_did_you_mean": ("（是不是 {word}？）", " (did you mean {word}?)"),
    "arg_invalid_number": ("{option}：{value} 不是整数", "{option}: {value} is not a whole number"),
    "arg_ambiguous": ("{option} 不明确，可能是：{matches}", "{option} is ambiguous: {matches}"),
    "arg_other": ("{option}：{message}", "{option}: {message}"),
    # --- amounts and days as typed -----------------------------------------------------
    "amount_format": (
        "{text}：金额以元为单位，最多两位小数，例如 100、100.5、100.50",
        "{text}: an amount is yuan with at most two decimals: 100, 100.5, 100.50",
    ),
    "amount_positive": ("{text}：金额必须大于零", "{text}: an amount must be positive"),
    "price_not_negative": ("{text}：单价不能为负", "{text}: a price cannot be negative"),
    "day_invalid": (
        "{text}：日期写作 YYYY-MM-DD（如 2026-11-01），或 today（今天）、yesterday（昨天）",
        "{text}: a day is YYYY-MM-DD (such as 2026-11-01), today or yesterday",
    ),
    "month_invalid": (
        "{text}：月份写作 YYYY-MM（如 2026-11），或 this（本月）、last（上月）",
        "{text}: a month is YYYY-MM (such as 2026-11), this or last",
    ),
    "period_both": ("--month 与 --from/--to 只能选一种", "say --month, or --from and --to, not both"),
    "period_to_alone": ("--to 需要与 --from 一起给出", "--to needs --from"),
    "period_reversed": ("--from {first} 晚于 --to {last}", "--from {first} is after --to {last}"),
    # --- huiyuan member / wallet / key / migrate -----------------------------------------
    "member_name_line": ("{name}  {phone}  会员号 {member_id}", "{name}  {phone}  id {member_id}"),
    "member_detail_line": (
        "  所属门店 {store}   等级 {tier}   注册于 {day}",
        "  home store {store}   tier {tier}   registered {day}",
    ),
    "member_card_line": ("  卡 {number}  {state}", "  card {number}  {state}"),
    "member_none": ("没有会员", "no members"),
    "say_whom": ("请用 --phone、--card 或 --id 指明会员", "say whom with --phone, --card or --id"),
    "wallet_balance": (
        "{name}  储值 {total}（本金 {principal}，赠送 {bonus}），冻结 {held}，可用 {available}",
        "{name}  stored value {total} (principal {principal}, bonus {bonus}), held {held}, available {available}",
    ),
    "wallet_entry": (
        "  {time}  {kind}{amount}  余额 {balance}  {store}  {memo}",
        "  {time}  {kind}{amount}  balance {balance}  {store}  {memo}",
    ),
    "key_issued": (
        "密钥编号 {key_id}\nAPI 密钥 {key}   （只显示这一次，请妥善保管）",
        "key id {key_id}\napi key {key}   (shown once: keep it safe)",
    ),
    "unknown_services": ("没有这些服务：{names}（可选：{known}）", "unknown services: {names} (there are {known})"),
    # --- answers that are not answers ---------------------------------------------------
    "no_answer": (
        "没有应答（{code}：{details}）：服务在运行吗（huiyuan up）？请稍后重试",
        "no answer: {code} {details}; is `huiyuan up` running? try again",
    ),
    "refused": ("被拒绝：{message}（{reason}）", "refused: {code} {reason} {message}"),
    "violation": ("  {field}：{description}（{reason}）", "  {field}: {reason} - {description}"),
    "outcome_heard": ("网关没有应答（{code}：{details}）。\n", "no answer from the gateway ({code}: {details}).\n"),
    "outcome_not_sent": (
        "{action} 没有发出（之前的会员查询没有应答），什么也没有做。\n网关恢复后，请加上\n"
        "  --request-id {request_id}\n再运行同一命令，只会办理一次。",
        "The {action} was not sent (the lookup before it got no answer): nothing was done.\n"
        "When the gateway answers, run the same command again with\n  --request-id {request_id}\n"
        "and it is done once.",
    ),
    "outcome_unknown": (
        "{action} 是否已办理，现在还不知道。请加上\n  --request-id {request_id}\n"
        "再运行同一命令，办完它或读出它的结果：不会办理两次。不加这个选项再运行，就可能办理两次。",
        "Whether the {action} went through is not known yet. Run the same command again with\n"
        "  --request-id {request_id}\nto finish it or read its answer: it cannot be done twice. "
        "Without it, it could be.",
    ),
    # --- huiyuan pos: usage ---------------------------------------------------------------
    "help_pos": ("收银台与后台（经网关）", "a cashier's terminal and the back offices, through the gateway"),
    "pos_usage": ("%(prog)s 命令 [ID] [选项 ...]", "%(prog)s COMMAND [ID] [OPTION ...]"),
    "pos_description": (
        "收银台：\n"
        "  lookup --phone P | --card N | --qr T        查会员：储值、积分、优惠券、计次卡\n"
        "  register --name N --phone P [--card-type ID]   注册会员\n"
        "  top-up --card N --amount 100 [--tender cash|bank-card|wechat-pay|alipay]   充值\n"
        "  checkout --card N --line 商品:品类:数量:单价 ... [--coupon C] [--points P]\n"
        "           [--stored-value 90] [--cash 10]     结账（单价、金额以元计）\n"
        "  receipt 订单号                                小票\n"
        "  refund 订单号 [--line 行号:数量 ...]           退货（不给 --line：整单）\n"
        "  report-lost | cancel-loss --card N --reason R   挂失 / 解挂（任一收银台）\n"
        "  replace-card --card N [--new-card M] --reason R   补卡：储值与积分随会员\n"
        "  gifts | redeem-gift --card N --gift 礼品号 [--quantity Q]   积分商城 / 兑换礼品\n"
        "  count-card-plans | sell-count-card --card N --plan 方案号   在售计次卡 / 售卡\n"
        "  punch 计次卡号 --card N [--sku S] [--quantity Q]   核销\n"
        "  set-pin --card N --new-pin 246813             会员设置支付密码（出示卡，或 --qr T）\n"
        "储值、积分和计次卡凭会员的卡（--card）、二维码（--qr）或支付密码（--phone P --pin 246813）使用；\n"
        "只报手机号只能查询。\n"
        "门店经理及以上的密钥：\n"
        "  orders [--state needs-attention|paid|...] [--org 路径]   订单\n"
        "  settle 订单号 --reason R                      处理被拒步骤卡住的订单\n"
        "  export [--month this|last|2026-11 | --from 日期 [--to 日期]] [--state refused]\n"
        "         [--format xlsx|csv] [--out 文件]       订单导出为 Excel（默认本月至今）\n"
        "  settlement [--month ... | --from ... --to ...]   门店间储值结算\n"
        "  day [--date today|yesterday|2026-11-23] [--store 路径]   日结：各收款方式的收与退\n"
        "  report --report sales|members|behaviour|liability|campaigns|staff [--org 路径]\n"
        "         [--period day|week|month|quarter|year --date 日期 | --month ... | --from ... --to ...]\n"
        "         [--out 文件 --format xlsx|csv]        报表：本期、上期、去年同期，按下级与日期\n"
        "  refund-top-up 充值单号 --reason R            充值退款（原路退回）\n"
        "  cancel-card --card N --reason R  |  card-history --card N   销卡 / 卡的记录\n"
        "  export-members [--org 路径] [--tag T] [--birthday-days N] [--anniversary-days N]\n"
        "                 [--dormant-days N] [--format xlsx|csv] [--out 文件]   会员导出为 Excel\n"
        "  care [--days 7] [--dormant-days 90]          会员关怀：近期生日、纪念日，久未到店的会员\n"
        "  contact --phone P --via phone|sms|wechat|in-store --topic birthday|anniversary|win-back|follow-up\n"
        "          [--note 内容]  |  contacts --phone P   记录回访 / 回访记录\n"
        "  batch-top-up --file examples/acme.csv --batch 批次号 [--store 路径]   企业批量充值\n"
        "  undo-punch 核销号 --reason R | refund-count-card 计次卡号 --reason R | count-card-history 计次卡号\n"
        "  reset-pin --phone P [--clear]                 解锁（或清除）输错被锁的支付密码\n"
        "区域或总部的密钥：\n"
        "  import-members --file examples/members.csv    批量导入会员（examples/README.md 说明各列）\n"
        "\n"
        "密钥取自 --key、环境变量 HUIYUAN_POS_KEY，或 huiyuan up 写下的 var/demo-terminal.key（示例门店的\n"
        "第一台收银台）。改动类命令没有收到应答时，会打印请求编号并以 75 退出：加上 --request-id 再运行，\n"
        "只会办理一次。",
        "At the till:\n"
        "  lookup --phone P | --card N | --qr T        a member: stored value, points, coupons, count cards\n"
        "  register --name N --phone P [--card-type ID]   a new member\n"
        "  top-up --card N --amount 100 [--tender cash|bank-card|wechat-pay|alipay]\n"
        "  checkout --card N --line SKU:CATEGORY:QTY:PRICE ... [--coupon C] [--points P]\n"
        "           [--stored-value 90] [--cash 10]     (prices and amounts in yuan)\n"
        "  receipt ORDER_ID\n"
        "  refund ORDER_ID [--line LINE_ID:QTY ...]      (no --line: the whole order)\n"
        "  report-lost | cancel-loss --card N --reason R   a card lost, or found, at any till\n"
        "  replace-card --card N [--new-card M] --reason R   balances stay with the member\n"
        "  gifts | redeem-gift --card N --gift GIFT_ID [--quantity Q]   the points mall\n"
        "  count-card-plans | sell-count-card --card N --plan PLAN_ID   count cards on sale, one sold\n"
        "  punch COUNT_CARD_ID --card N [--sku S] [--quantity Q]   uses of a count card\n"
        "  set-pin --card N --new-pin 246813             the member sets a payment PIN (card shown, or --qr T)\n"
        "Stored value, points and count cards are spent on the member's card (--card), QR code (--qr) or\n"
        "payment PIN (--phone P --pin 246813); a phone number alone only looks up.\n"
        "A store manager's key or above:\n"
        "  orders [--state needs-attention|paid|...] [--org PATH]\n"
        "  settle ORDER_ID --reason R                    finish an order a refused step holds up\n"
        "  export [--month this|last|2026-11 | --from DAY [--to DAY]] [--state refused]\n"
        "         [--format xlsx|csv] [--out FILE]       the orders for Excel (default: this month)\n"
        "  settlement [--month ... | --from ... --to ...]   stored value loaded in one store, spent in another\n"
        "  day [--date today|yesterday|2026-11-23] [--store PATH]   the store's day, by tender\n"
        "  report --report sales|members|behaviour|liability|campaigns|staff [--org PATH]\n"
        "         [--period day|week|month|quarter|year --date DAY | --month ... | --from ... --to ...]\n"
        "         [--out FILE --format xlsx|csv]        a report: this period, the one before, a year ago\n"
        "  refund-top-up TOP_UP_ID --reason R            the money back to its tender\n"
        "  cancel-card --card N --reason R  |  card-history --card N\n"
        "  export-members [--org PATH] [--tag T] [--birthday-days N] [--anniversary-days N]\n"
        "                 [--dormant-days N] [--format xlsx|csv] [--out FILE]   the members for Excel\n"
        "  care [--days 7] [--dormant-days 90]          birthdays, anniversaries, who stopped coming\n"
        "  contact --phone P --via phone|sms|wechat|in-store --topic birthday|anniversary|win-back|follow-up\n"
        "          [--note TEXT]  |  contacts --phone P   a contact kept / a member's contacts\n"
        "  batch-top-up --file examples/acme.csv --batch ID [--store PATH]   a company's top-ups\n"
        "  undo-punch USE_ID --reason R | refund-count-card COUNT_CARD_ID --reason R | count-card-history ID\n"
        "  reset-pin --phone P [--clear]                 a PIN locked by wrong tries unlocked (or cleared)\n"
        "A region's key or HQ's:\n"
        "  import-members --file examples/members.csv    members imported (examples/README.md: the columns)\n"
        "\n"
        "The key comes from --key, HUIYUAN_POS_KEY, or var/demo-terminal.key (which huiyuan up writes for\n"
        "the demo store's first till). A change that hears no answer prints its request id and exits\n"
        "with 75: run it again with --request-id and it is done once.",
    ),
    "help_id": (
        "订单号、充值单号、计次卡号，或 undo-punch 的核销号",
        "an order id, refund-top-up's top-up id, a count card's id or undo-punch's use id",
    ),
    "help_pos_key": (
        "API 密钥（默认：HUIYUAN_POS_KEY，或示例收银台的密钥）",
        "the API key (default: HUIYUAN_POS_KEY, or the demo till's)",
    ),
    "help_request_id": (
        "改动类命令：没有收到应答时它打印的请求编号",
        "a command that changes something: the id it printed when its answer was lost",
    ),
    "help_qr": ("会员二维码", "the member's QR code"),
    "help_pin": (
        "会员的支付密码（未出示卡或二维码时）",
        "the member's payment PIN, when they show neither card nor QR code",
    ),
    "help_new_pin": ("set-pin：会员选定的支付密码（6 位数字）", "set-pin: the PIN the member chose (6 digits)"),
    "help_clear_pin": ("reset-pin：清除支付密码，而不只是解锁", "reset-pin: clear the PIN, not only unlock it"),
    "help_name": ("姓名", "the name"),
    "help_card_type": ("卡类型编号", "the card type's id"),
    "help_new_card": (
        "replace-card：预印的新卡号（默认自动分配）",
        "replace-card: a pre-printed number (default: one assigned)",
    ),
    "help_amount": ("top-up：金额（元），例如 100 或 99.50", "top-up: yuan, such as 100 or 99.50"),
    "help_tender": ("收款方式", "how it is paid"),
    "help_line": (
        "checkout：商品:品类:数量:单价（元）；refund：行号:数量",
        "checkout: SKU:CATEGORY:QTY:UNIT_PRICE_YUAN; refund: LINE_ID:QTY",
    ),
    "help_coupon": ("优惠券码（可多次）", "a coupon code (may repeat)"),
    "help_gift": ("redeem-gift：礼品编号（pos gifts 列出）", "redeem-gift: the gift's id (pos gifts lists them)"),
    "help_quantity": ("redeem-gift：兑换几件；punch：核销几次", "redeem-gift: how many; punch: how many uses"),
    "help_plan": (
        "sell-count-card：方案编号（pos count-card-plans 列出）",
        "sell-count-card: the plan's id (pos count-card-plans lists them)",
    ),
    "help_sku": (
        "punch：所用的服务（计次卡限定服务时）",
        "punch: the service given, where the card names its services",
    ),
    "help_points": ("checkout：抵扣的积分", "checkout: points to spend"),
    "help_stored_value": ("checkout：储值支付的金额（元）", "checkout: yuan paid with stored value"),
    "help_cash": ("checkout：现金支付的金额（元）", "checkout: yuan paid in cash"),
    "help_state": (
        "orders、export：只要这种状态，例如 needs-attention、refused",
        "orders, export: only this state, such as needs-attention or refused",
    ),
    "help_pos_org": (
        "orders、导出、settlement：该组织节点之下（默认：密钥所在节点）",
        "orders, exports, settlement: under this org node (default: the key's)",
    ),
    "help_tag": ("export-members：只要有此标签的会员", "export-members: only the members with this tag"),
    "help_file": (
        "import-members、batch-top-up：.csv 或 .xlsx 文件（见 examples/）",
        "import-members, batch-top-up: a .csv or .xlsx file (see examples/)",
    ),
    "help_batch": ("batch-top-up：企业给这一批的编号", "batch-top-up: the company's id for the batch"),
    "help_store": (
        "batch-top-up：收款的门店；day：哪个门店（区域或总部的密钥）",
        "batch-top-up: the store that took the money; day: whose day (a region's or HQ's key)",
    ),
    "help_date": (
        "day：哪一天：YYYY-MM-DD、today、yesterday（默认今天）",
        "day: which: YYYY-MM-DD, today or yesterday (default: today)",
    ),
    "help_days": ("care：未来几天（含今天）", "care: the coming days, today included"),
    "help_via": ("contact：方式", "contact: how"),
    "help_topic": ("contact：事由", "contact: why"),
    "help_note": ("contact：结果", "contact: what came of it"),
    "help_birthday_days": (
        "export-members：只要未来 N 天（含今天）过生日的",
        "export-members: only birthdays of the coming N days, today included",
    ),
    "help_anniversary_days": (
        "export-members：只要未来 N 天的纪念日",
        "export-members: only anniversaries of the coming N days",
    ),
    "help_dormant_days": (
        "care（默认 90）、export-members：N 天没来过的会员",
        "care (default 90), export-members: who has not come for N days",
    ),
    "help_reason": (
        "原因（settle、卡的操作、refund-top-up、undo-punch 等）",
        "why (settle, the card commands, refund-top-up, undo-punch...)",
    ),
    "help_from": (
        "export、settlement：第一天：YYYY-MM-DD、today、yesterday",
        "export, settlement: the first day: YYYY-MM-DD, today or yesterday",
    ),
    "help_to": (
        "export、settlement：最后一天（含），默认今天",
        "export, settlement: the last day (included), default today",
    ),
    "help_month": (
        "export、settlement：整月：YYYY-MM、this（本月至今，默认）、last（上月）",
        "export, settlement: a month: YYYY-MM, this (so far; the default) or last",
    ),
    "help_format": ("导出：文件格式", "exports: the file's format"),
    "help_out": (
        "导出：写到哪个文件或文件夹（默认：当前文件夹，网关建议的文件名）",
        "exports: the file or folder to write to (default: here, under the name the gateway suggests)",
    ),
    # --- huiyuan pos: at the till ---------------------------------------------------------
    "say_whom_at_till": ("请用 --phone、--card 或 --qr 指明会员", "say whom with --phone, --card or --qr"),
    "no_key": (
        "没有终端密钥：请用 --key 给出，或设置 HUIYUAN_POS_KEY，或运行 huiyuan up 生成示例密钥",
        "no terminal key: pass --key, set HUIYUAN_POS_KEY, or run `huiyuan up` for the demo key",
    ),
    "lookup_balances": ("  储值 {stored_value}   积分 {points}", "  stored value {stored_value}   points {points}"),
    "lookup_coupon": (
        "  优惠券 {code}  {name}  {terms}  有效期至 {until}",
        "  coupon {code}  {name}  {terms}  until {until}",
    ),
    "lookup_no_coupons": ("  无优惠券", "  no coupons"),
    "registered": (
        "已注册 {name}  会员号 {member_id}  卡号 {card}",
        "registered {name}  member {member_id}  card {card}",
    ),
    "top_up_needs_amount": ("top-up 需要 --amount（金额，单位元）", "top-up needs --amount, in yuan"),
    "top_up_id": ("充值单 {top_up_id}", "top-up {top_up_id}"),
    "line_format": (
        "--line {text}：结账的商品行写作 商品:品类:数量:单价，例如 tea-1:tea:2:60",
        "--line {text}: a checkout's line is SKU:CATEGORY:QTY:PRICE, such as tea-1:tea:2:60",
    ),
    "line_price": ("--line {text}：{error}", "--line {text}: {error}"),
    "return_line_format": (
        "--line {text}：退货行写作 行号:数量，例如 1:1（小票上的行号）",
        "--line {text}: a refund's line is LINE_ID:QTY, such as 1:1 (the receipt's line ids)",
    ),
    "receipt_order": ("订单 {order_id}  {store}", "order {order_id}  {store}"),
    "receipt_returned": ("（已退 {quantity}）", "  (returned {quantity})"),
    "receipt_total": ("  合计 {total}", "  total {total}"),
    "receipt_stored_value": ("  储值支付 {paid}，余额 {left}", "  stored value paid {paid}, left {left}"),
    "receipt_tender": ("  收款 {tender} {amount}", "  paid {amount} ({tender})"),
    "receipt_points": (
        "  积分 使用 {used}，获得 {earned}，余额 {left}",
        "  points used {used}, earned {earned}, left {left}",
    ),
    "refund_stored_value": ("退回储值 {amount}", "refunded to stored value {amount}"),
    "refund_to": ("退回{tender} {amount}", "refund {amount} to {tender}"),
    "refund_points": ("积分 退回 {returned}，扣回 {taken}", "points returned {returned}, taken back {taken}"),
    "order_now": ("订单现为 {state}", "order now {state}"),
    "state_one_of": ("--state 可选：{names}", "--state is one of {names}"),
    "order_word": ("订单 {order_id}", "order {order_id}"),
    "order_sale": ("销售额 {amount}", "sale {amount}"),
    "step_refused": ("  {step} 被拒绝：{reason}{settled}", "  {step} refused: {reason}{settled}"),
    "step_settled": ("；已由 {who} 处理：{why}", "; settled by {who}: {why}"),
    "step_unsettled": ("；待处理（pos settle）", "; needs settling"),
    "no_orders": ("没有订单", "no orders"),
    "wrote": ("已写入 {path}（{size:,} 字节）", "wrote {path} ({size:,} bytes)"),
    "period_of": ("{first} 至 {last}", "{first} to {last}"),
    # --- cards, the points mall, top-ups refunded, settlement ----------------------------
    "needs_card": ("{action} 需要 --card（卡号）", "{action} needs --card"),
    "card_replaced": (
        "卡 {card} 已补为新卡 {new_card}；储值和积分仍归会员",
        "card {card} replaced by {new_card}; stored value and points stay with the member",
    ),
    "card_now": ("卡 {card} {state}{after}", "card {card} {state}{after}"),
    "card_cannot_pay": ("；此卡不能再支付", "; it can no longer pay"),
    "balances_stay": ("；储值和积分仍归会员", "; stored value and points stay with the member"),
    "card_heading": (
        "卡 {card}  {state}  会员号 {member_id}  开卡于 {org}",
        "card {card}  {state}  member {member_id}  issued at {org}",
    ),
    "gift_line": (
        "礼品 {gift_id}  {name}  {points} 积分  库存 {stock}{limit}",
        "gift {gift_id}  {name}  {points} points  {stock} in stock{limit}",
    ),
    "gift_limit": ("  每人限 {limit} 件", "  at most {limit} a member"),
    "no_gifts": ("本店没有可兑换的礼品", "no gifts on offer here"),
    "redeem_needs": (
        "redeem-gift 需要 --gift（pos gifts 列出礼品）和 --card 或 --phone",
        "redeem-gift needs --gift (pos gifts lists them) and --card or --phone",
    ),
    "redeemed": (
        "{name}：兑换礼品 {gift_id} × {quantity}，用去 {points} 积分；库存还剩 {left}",
        "{name}: {quantity} x gift {gift_id} for {points} points; {left} left in stock",
    ),
    "points_left": ("积分余额 {points}", "points left {points}"),
    "top_up_heading": (
        "充值单 {top_up_id}  {time}  {store}  {amount}（{tender}）  赠送 {bonus}",
        "top-up {top_up_id}  {time}  {store}  {amount} ({tender})  bonus {bonus}",
    ),
    "bonus_taken_back": ("扣回赠送 {bonus}；储值余额 {left}", "bonus taken back {bonus}; stored value left {left}"),
    "settlement_header": (("门店", "应付他店", "应收他店", "净额"), ("store", "owes others", "owed by others", "net")),
    "settlement_none": ("这段时间没有跨店使用的储值", "no stored value crossed stores in those days"),
    # --- count cards ---------------------------------------------------------------------
    "count_card_line": (
        "计次卡 {card_id}  {name}  剩 {left}/{total} 次  剩余价值 {value}{until}{state}",
        "count card {card_id}  {name}  {left}/{total} uses left  value left {value}{until}{state}",
    ),
    "until": ("  有效期至 {day}", "  until {day}"),
    "plan_line": (
        "方案 {plan_id}  {name}  {uses} 次 {price}  {valid}{services}",
        "plan {plan_id}  {name}  {uses} uses for {price}  {valid}{services}",
    ),
    "plan_valid_days": ("有效 {days} 天", "valid {days} days"),
    "plan_never_expires": ("长期有效", "never expires"),
    "plan_services": ("  适用 {skus}", "  for {skus}"),
    "no_plans": ("本店没有在售的计次卡", "no count cards on sale here"),
    "sell_needs": (
        "sell-count-card 需要 --plan（pos count-card-plans 列出方案）和 --card 或 --phone",
        "sell-count-card needs --plan (pos count-card-plans lists them) and --card or --phone",
    ),
    "sold": ("{name}：售出 {card}，{price}（{tender}）", "{name}: sold {card} for {price} ({tender})"),
    "needs_use_id": ("{action} 需要核销号", "{action} needs the use's id"),
    "needs_count_card_id": ("{action} 需要计次卡号", "{action} needs the count card's id"),
    "entry_undone": ("（已撤销）", "(undone)"),
    "uses_left_after": ("剩 {left} 次", "left {left}"),
    "set_pin_needs": (
        "set-pin 需要 --new-pin，以及 --card、--qr 或 --pin 之一以证明是会员本人",
        "set-pin needs --new-pin, and --card, --qr or --pin to show it is the member",
    ),
    "pin_set": ("{name}：支付密码已设置", "{name}: payment PIN set"),
    "pin_unlocked": ("{name}：支付密码已解锁", "{name}: payment PIN set, unlocked"),
    "pin_cleared": ("{name}：支付密码已清除", "{name}: payment PIN cleared"),
    "punched": ("核销 {uses} 次  核销号 {use_id}", "punched {uses} use(s)  use {use_id}"),
    "undone": ("核销 {use_id} 已撤销：退回 {uses} 次", "use {use_id} undone: {uses} use(s) back"),
    # --- back office: files, care, the day --------------------------------------------
    "file_needed": (
        "{action} 需要 --file：带表头的 .csv 或 .xlsx（示例见 examples/）",
        "{action} needs --file, a .csv or .xlsx with a header row (see examples/)",
    ),
    "batch_needed": (
        "batch-top-up 需要 --file 和 --batch（企业给这一批的编号）",
        "batch-top-up needs --file and --batch (the company's id for this batch)",
    ),
    "file_missing": ("找不到文件 {path}", "no file {path}"),
    "file_is_folder": ("{path} 是文件夹，不是文件", "{path} is a folder, not a file"),
    "file_unreadable": ("无法读取 {path}：{why}", "cannot read {path}: {why}"),
    "file_kind": (
        "{path}：只能读取 .csv 或 .xlsx（.xls 请在 Excel 里另存为 .xlsx）",
        "{path}: only .csv or .xlsx files are read (save an .xls as .xlsx in Excel)",
    ),
    "file_unwritable": ("无法写入 {path}：{why}", "cannot write {path}: {why}"),
    "imported": (
        "共 {total} 行：导入 {imported}，已是会员 {existing}，拒绝 {rejected}",
        "{total} rows: {imported} imported, {existing} already members, {rejected} rejected",
    ),
    "import_reject": ("  第 {row} 行  {field}  {reason}  {message}", "  row {row}  {field}  {reason}  {message}"),
    "batch_done": (
        "共 {rows} 行：已充值 {applied} 行（{total}{bonus}），拒绝 {rejected} 行",
        "{rows} rows: {applied} applied ({total}{bonus}), {rejected} rejected",
    ),
    "batch_bonus": (" + 赠送 {bonus}", " + bonus {bonus}"),
    "batch_reject": ("  第 {row} 行  {reason}  {amount}", "  row {row}  {reason}  {amount}"),
    "days_range": ("{days} 天：请给 1（今天）到 366（一年）", "{days} days: say 1 (today) to 366 (a year)"),
    "dormant_negative": (
        "--dormant-days {days}：请给 0 或更多天",
        "--dormant-days {days}: say how many days back, 0 or more",
    ),
    "care_birthdays": ("生日：{today} 起 {days} 天", "生日 (birthdays), {days} days from {today}"),
    "care_anniversaries": ("纪念日：{today} 起 {days} 天", "纪念日 (anniversaries), {days} days from {today}"),
    "care_dormant": ("沉睡：{days} 天未到店（{since} 以来）", "沉睡 (no visit for {days} days, since {since})"),
    "care_none": ("  无", "  none"),
    "care_more": (
        "  ……超过 {limit} 位：export-members 加 --birthday-days、--anniversary-days 或 --dormant-days 可全部导出",
        "  ... more than {limit}: export-members with --birthday-days, --anniversary-days or "
        "--dormant-days lists them all",
    ),
    "whom_by_phone": ("请用 --phone 给出会员的 11 位手机号", "say whom with --phone and the member's 11 digits"),
    "no_member_by_phone": (
        "此密钥的范围内没有手机号为 {phone} 的会员",
        "no member with phone {phone} under this key's node",
    ),
    "contact_recorded": ("已记录 {contact_id}  {name}  {via} {topic}", "recorded {contact_id}  {name}  {via} {topic}"),
    "no_contacts": ("  还没有回访记录", "  no contacts yet"),
    "day_orders": (
        "  订单 {orders}  销售额 {sales}  优惠 {discounts}",
        "  orders {orders}  sales {sales}  discounts {discounts}",
    ),
    "day_stored_value": (
        "  储值 充值 {loaded}（+ 赠送 {bonus}），消费 {spent}",
        "  stored value loaded {loaded} (+ bonus {bonus}), spent {spent}",
    ),
    "day_points": (
        "  积分 发放 {earned}，使用 {spent}  新会员 {new_members}",
        "  points earned {earned}, spent {spent}  new members {new_members}",
    ),
    "day_count_cards": (
        "  计次卡 售出 {sold}（扣除退卡），核销 {used}",
        "  count cards sold {sold} (net of refunds), uses punched {used}",
    ),
    "day_header": (
        ("收款方式", "销售", "充值", "计次卡", "退款", "净额"),
        ("takings", "sales", "top-ups", "count cards", "refunded", "net"),
    ),
    "day_not_at_till": (
        "  非收银台：企业批量充值 {enterprise}，线上 {online}",
        "  not at a till: companies' batches {enterprise}, online {online}",
    ),
    # --- huiyuan up ----------------------------------------------------------------------
    "up_migrating": ("huiyuan：数据库迁移", "huiyuan: migrating"),
    "up_migrated": ("  已迁移 {name} {database}", "  migrated {name} {database}"),
    "up_serving": ("  {name} 已就绪（SERVING），地址 {address}", "  {name} SERVING on {address}"),
    "up_exited": (
        "huiyuan：{name} 已退出（{code}），停止其余服务",
        "huiyuan: {name} exited with {code}; stopping the rest",
    ),
    "up_port_taken": (
        "{name} 的端口 {address} 已被占用（另一个 huiyuan up 在运行？）：先停止它，或用 {variable} 换一个端口",
        "{name}'s port {address} is taken (another huiyuan up running?): stop it, or choose another with {variable}",
    ),
    "up_not_serving": (
        "{name} 在 {seconds} 秒内没有就绪（SERVING）",
        "{name} did not report SERVING within {seconds} s",
    ),
    "up_stopping": ("\nhuiyuan：正在停止", "\nhuiyuan: stopping"),
    "up_stopped": ("  {name} 已停止", "  {name} stopped"),
    "demo_chain": (
        "  示例连锁：{nodes} 个组织节点，{tiers} 个等级，{members} 位持卡会员",
        "  seeded demo chain: {nodes} org nodes, {tiers} tiers, {members} members with cards",
    ),
    "demo_stored_value": (
        "  示例储值：充值套餐 充100送20，{top_ups} 笔充值，在售计次卡 茶饮10次卡",
        "  seeded stored value: package 充100送20, {top_ups} top-ups, a count card 茶饮10次卡",
    ),
    "demo_points": (
        "  示例积分：两条积分规则，每位会员的开卡积分，积分商城的一件礼品",
        "  seeded points: two rules, sign-up points for each member, a gift in the points mall",
    ),
    "demo_campaigns": (
        "  示例活动：满100减20（进行中），每位会员一张5元券",
        "  seeded campaigns: 满100减20 (active), a 5-yuan coupon for each member",
    ),
    "up_console": ("网页后台：{address}", "Web console: {address}"),
    "up_console_logins": (
        "演示账号（密码均为 {password}，登录后可在右上角修改密码）：",
        "Demo logins (each with the password {password}; change it once signed in):",
    ),
    "demo_terminal_key": (
        "  hq/east/sh-001/pos-1 的终端密钥在 {path}",
        "  terminal key for hq/east/sh-001/pos-1 in {path}",
    ),
    "up_banner": (
        "\nhuiyuan 已启动。网关：{gateway}（会员服务：{member}）\n在另一个终端里试试：\n{commands}\n"
        "更多命令见 README.md；{huiyuan} pos -h 列出收银台与后台的全部命令。按 Ctrl-C 全部停止。",
        "\nhuiyuan is up. Gateway: {gateway}  (member service: {member})\nTry, in another shell:\n{commands}\n"
        "README.md has more; {huiyuan} pos -h lists every command of the till and back offices. "
        "Ctrl-C stops everything.",
    ),
    "up_same_settings": ("# 先让那个终端用同样的设置：", "# first give that shell the same settings:"),
}
