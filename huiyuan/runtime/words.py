"""The Chinese a back office and a cashier read for the contracts' enum values: an
order's state, a tender, a card's state, a ledger entry's kind... Exports write them
(they are for Excel, in Chinese whatever the caller's language) and `huiyuan` prints
them when it speaks Chinese. Keyed by the value's full name, so two enums' values
that share a word ("refunded", "active") each say what they mean."""

CHINESE = {
    # orders (gateway.v1 OrderState)
    "ORDER_STATE_PENDING": "处理中",
    "ORDER_STATE_PAID": "已支付",
    "ORDER_STATE_REFUSED": "已拒绝",
    "ORDER_STATE_PARTLY_REFUNDED": "部分退款",
    "ORDER_STATE_REFUNDED": "已退款",
    "ORDER_STATE_NEEDS_ATTENTION": "待处理",
    # what a till takes (gateway.v1 TenderKind, wallet.v1 Tender)
    "TENDER_KIND_CASH": "现金",
    "TENDER_KIND_BANK_CARD": "银行卡",
    "TENDER_KIND_WECHAT_PAY": "微信支付",
    "TENDER_KIND_ALIPAY": "支付宝",
    "TENDER_KIND_STORED_VALUE": "储值",
    "TENDER_CASH": "现金",
    "TENDER_BANK_CARD": "银行卡",
    "TENDER_WECHAT_PAY": "微信支付",
    "TENDER_ALIPAY": "支付宝",
    "TENDER_ONLINE": "线上",
    "TENDER_ENTERPRISE": "企业批量充值",
    # cards (member.v1 CardState, CardAction)
    "CARD_STATE_ACTIVE": "正常",
    "CARD_STATE_LOST": "已挂失",
    "CARD_STATE_FROZEN": "已冻结",
    "CARD_STATE_REPLACED": "已换卡",
    "CARD_STATE_CANCELLED": "已销卡",
    "CARD_ACTION_ISSUE": "开卡",
    "CARD_ACTION_REPORT_LOST": "挂失",
    "CARD_ACTION_CANCEL_LOSS": "解挂",
    "CARD_ACTION_FREEZE": "冻结",
    "CARD_ACTION_UNFREEZE": "解冻",
    "CARD_ACTION_REPLACE": "补卡",
    "CARD_ACTION_CANCEL": "销卡",
    # stored value (wallet.v1 EntryKind)
    "ENTRY_KIND_TOP_UP": "充值",
    "ENTRY_KIND_TOP_UP_BONUS": "充值赠送",
    "ENTRY_KIND_CONSUMPTION": "消费",
    "ENTRY_KIND_CONSUMPTION_REFUND": "消费退款",
    "ENTRY_KIND_TOP_UP_REFUND": "充值退款",
    "ENTRY_KIND_ADJUSTMENT": "调整",
    # count cards (wallet.v1 CountCardState, CountCardEntryKind)
    "COUNT_CARD_STATE_ACTIVE": "可用",
    "COUNT_CARD_STATE_USED_UP": "已用完",
    "COUNT_CARD_STATE_EXPIRED": "已过期",
    "COUNT_CARD_STATE_REFUNDED": "已退卡",
    "COUNT_CARD_ENTRY_KIND_SALE": "售卡",
    "COUNT_CARD_ENTRY_KIND_USE": "核销",
    "COUNT_CARD_ENTRY_KIND_USE_UNDONE": "撤销核销",
    "COUNT_CARD_ENTRY_KIND_REFUND": "退卡",
    # member care (member.v1 CareChannel, CareTopic)
    "CARE_CHANNEL_PHONE": "电话",
    "CARE_CHANNEL_SMS": "短信",
    "CARE_CHANNEL_WECHAT": "微信",
    "CARE_CHANNEL_IN_STORE": "到店",
    "CARE_TOPIC_BIRTHDAY": "生日",
    "CARE_TOPIC_ANNIVERSARY": "纪念日",
    "CARE_TOPIC_WIN_BACK": "唤醒",
    "CARE_TOPIC_FOLLOW_UP": "回访",
    # members (member.v1 Gender, RegistrationChannel)
    "GENDER_FEMALE": "女",
    "GENDER_MALE": "男",
    "GENDER_UNDISCLOSED": "保密",
    "REGISTRATION_CHANNEL_STORE": "门店",
    "REGISTRATION_CHANNEL_CALL_CENTRE": "客服中心",
    "REGISTRATION_CHANNEL_WEB": "网站",
    "REGISTRATION_CHANNEL_QR_SELF_SERVICE": "扫码自助",
    "REGISTRATION_CHANNEL_BULK_IMPORT": "批量导入",
}


def chinese(name: str, default: str = "") -> str:
    """The Chinese of an enum value named in full (ORDER_STATE_PAID: 已支付)."""
    return CHINESE.get(name, default)
