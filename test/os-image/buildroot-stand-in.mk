# A stand-in for the part of Buildroot that builds one generic-package from a
# BR2_EXTERNAL tree, so that test/os-image/buildroot.test.ts runs vouch.mk with
# GNU make (Buildroot itself is in no registry CI reaches). Names and order are
# Buildroot's: the .config is read, then the external tree's external.mk
# (Makefile), generic-package (package/pkg-generic.mk, pkg-utils.mk), the
# download checked against the .hash file (support/download/check-hash), and
# target-finalize's strip (Makefile: STRIP_FIND_CMD). Reduced to what a package
# of one file uses: no patches, no per-package directories, sha256 only.
#
# make -f buildroot-stand-in.mk BR2_CONFIG=.config BR2_EXTERNAL_VOUCH_PATH=...
#   BUILD_DIR=... DL_DIR=... TARGET_DIR=... STRIPCMD=... vouch target-finalize
# make -f buildroot-stand-in.mk ... VARS='VOUCH_SOURCE ...' printvars

include $(BR2_CONFIG)

# Every goal here builds (Makefile: set unless only non-build goals are asked).
BR_BUILDING = y

INSTALL = /usr/bin/install
qstrip = $(strip $(subst ",,$(1)))
notfirstword = $(wordlist 2,$(words $(1)),$(1))
findfileclauses = $(call notfirstword,$(patsubst %,-o -name '%',$(1)))
UPPERCASE = $(shell echo $(1) | tr a-z- A-Z_)
pkgdir = $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
pkgname = $(lastword $(subst /, ,$(pkgdir)))

# check-hash(file, name in the hash file, hash file): every sha256 line for the
# name must match, and there must be one.
define check-hash
	awk -v f='$(2)' '$$1 == "sha256" && $$3 == f { print $$2 "  $(1)"; n++ } \
		END { exit !n }' $(3) >$(1).sha256
	sha256sum --check --strict $(1).sha256
endef

# $(1): the package's name, $(2): its variables' prefix.
define inner-generic-package
$(2)_PKGDIR = $(pkgdir)
$(2)_DL_DIR = $$(DL_DIR)/$(1)
$(2)_DIR = $$(BUILD_DIR)/$(1)-$$($(2)_VERSION)

$(1): $$($(2)_DIR)/.stamp_target_installed

$$($(2)_DIR)/.stamp_downloaded:
	mkdir -p $$($(2)_DL_DIR) $$(@D)
	$$(if $$(filter file,$$($(2)_SITE_METHOD)),,$$(error $(1): only the file method here))
	cp $$($(2)_SITE)/$$($(2)_SOURCE) $$($(2)_DL_DIR)/$$($(2)_SOURCE).tmp
	$$(call check-hash,$$($(2)_DL_DIR)/$$($(2)_SOURCE).tmp,$$($(2)_SOURCE),$$($(2)_PKGDIR)/$(1).hash)
	mv $$($(2)_DL_DIR)/$$($(2)_SOURCE).tmp $$($(2)_DL_DIR)/$$($(2)_SOURCE)
	touch $$@

$$($(2)_DIR)/.stamp_extracted: $$($(2)_DIR)/.stamp_downloaded
	$$($(2)_EXTRACT_CMDS)
	touch $$@

$$($(2)_DIR)/.stamp_target_installed: $$($(2)_DIR)/.stamp_extracted
	$$($(2)_INSTALL_TARGET_CMDS)
	$$(if $$(BR2_INIT_SYSTEMD),$$($(2)_INSTALL_INIT_SYSTEMD))
	touch $$@
endef

generic-package = $(call inner-generic-package,$(pkgname),$(call UPPERCASE,$(pkgname)))

include $(BR2_EXTERNAL_VOUCH_PATH)/external.mk

STRIP_FIND_CMD = \
	find $(TARGET_DIR) \
	$(if $(call qstrip,$(BR2_STRIP_EXCLUDE_FILES)), \
		-not \( $(call findfileclauses,$(call qstrip,$(BR2_STRIP_EXCLUDE_FILES))) \) ) \
	-type f \( -perm /111 -o -name '*.so*' \) -print0

.PHONY: target-finalize
target-finalize:
	$(if $(BR2_STRIP_strip),$(STRIP_FIND_CMD) | xargs -0 $(STRIPCMD) 2>/dev/null || true)

.PHONY: printvars
printvars:
	@$(foreach V,$(VARS),echo '$(V)=$($(V))';)
