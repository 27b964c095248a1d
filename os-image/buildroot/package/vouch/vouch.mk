################################################################################
#
# vouch
#
################################################################################

VOUCH_VERSION = 0.1.0
# The arm64 single executable that `npm run build:buildroot` leaves in the
# repository's dist/ and pins in vouch.hash: copied and checked like a
# download. A published release would set VOUCH_SITE to its URL instead.
VOUCH_SITE = $(BR2_EXTERNAL_VOUCH_PATH)/../../dist
VOUCH_SITE_METHOD = file
VOUCH_SOURCE = vouch-linux-arm64
# The executable also carries Node.js (MIT) and npm modules under their own
# licenses (dist/*.LEGAL.txt).
VOUCH_LICENSE = Apache-2.0

# The account the unit runs the agent as (User=vouch), in the docker group that
# docker-engine.mk makes, for the Docker socket (makeusers: support/scripts/mkusers).
VOUCH_USERS = vouch -1 vouch -1 * - - docker vouch content trust agent

# Not an archive: the executable itself.
define VOUCH_EXTRACT_CMDS
	cp $(VOUCH_DL_DIR)/$(VOUCH_SOURCE) $(@D)/vouch
endef

define VOUCH_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 $(@D)/vouch $(TARGET_DIR)/usr/bin/vouch
	$(INSTALL) -D -m 0644 $(VOUCH_PKGDIR)/agent.yaml \
		$(TARGET_DIR)/etc/vouch/agent.yaml
	$(INSTALL) -D -m 0755 $(BR2_EXTERNAL_VOUCH_PATH)/../rauc/vouch-pre-install \
		$(TARGET_DIR)/usr/libexec/vouch/rauc-pre-install
endef

# The unit is the one every systemd device gets; the drop-in and tmpfiles.d
# entry move its state to the data partition.
define VOUCH_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(BR2_EXTERNAL_VOUCH_PATH)/../systemd/vouch.service \
		$(TARGET_DIR)/usr/lib/systemd/system/vouch.service
	$(INSTALL) -D -m 0644 $(VOUCH_PKGDIR)/haos.conf \
		$(TARGET_DIR)/usr/lib/systemd/system/vouch.service.d/haos.conf
	$(INSTALL) -D -m 0644 $(VOUCH_PKGDIR)/vouch.tmpfiles \
		$(TARGET_DIR)/usr/lib/tmpfiles.d/vouch.conf
	$(INSTALL) -D -m 0644 $(VOUCH_PKGDIR)/80-vouch.preset \
		$(TARGET_DIR)/usr/lib/systemd/system-preset/80-vouch.preset
endef

# Stripping the executable after Node's single-executable blob was put in
# makes it crash, and target-finalize strips every executable of TARGET_DIR
# but those BR2_STRIP_EXCLUDE_FILES names (Makefile: STRIP_FIND_CMD). That
# is the defconfig's setting: checked here, with an error the user can
# understand.
ifeq ($(BR2_PACKAGE_VOUCH)$(BR2_STRIP_strip)$(BR_BUILDING),yyy)
ifeq ($(filter vouch,$(call qstrip,$(BR2_STRIP_EXCLUDE_FILES))),)
$(error vouch crashes once stripped: add "vouch" to BR2_STRIP_EXCLUDE_FILES)
endif
endif

$(eval $(generic-package))
