include $(sort $(wildcard $(BR2_EXTERNAL_VOUCH_PATH)/package/*/*.mk))
