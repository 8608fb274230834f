# deploy/debian/package.cmake: `cmake --build build --target package` makes two .debs
# with CPack's DEB generator, one per install component:
#
#   ferry_<version>_<arch>.deb      component ferry: the binary, plugins, Lua modules,
#                                   /etc/ferry (conffiles), systemd units, man pages
#   ferry-dev_<version>_<arch>.deb  component dev: include/ferry/, ferry-plugin.pc
#
# The package's own files (/etc/ferry, the units, /usr/share/doc) are EXCLUDE_FROM_ALL:
# they name /usr/bin/ferry and /etc/ferry, so `cmake --install build --prefix DIR`
# leaves them out and only CPack's per-component install (prefix /usr) takes them.
# tests/integration/package_deb.sh installs, checks, lints and purges the result.

set(deb ${CMAKE_CURRENT_LIST_DIR})
set(FERRY_DEB_STAGE ${CMAKE_BINARY_DIR}/debian)

# /etc/ferry: the packaged configuration, every file a conffile (dpkg keeps the
# operator's edits on upgrade). Secrets and certificates are not in the package:
# postinst makes them in /etc/ferry/tls and /etc/ferry/tokens on first install.
install(FILES ${deb}/ferry.yaml ${deb}/connector.yaml
        DESTINATION /etc/ferry COMPONENT ferry EXCLUDE_FROM_ALL)
install(FILES ${deb}/ferry-gateway.service ${deb}/ferry-connector.service
        DESTINATION lib/systemd/system COMPONENT ferry EXCLUDE_FROM_ALL)
install(FILES ${deb}/ferry-dev.lintian-overrides DESTINATION share/lintian/overrides
        RENAME ferry-dev COMPONENT dev EXCLUDE_FROM_ALL)

# Each package's /usr/share/doc/<package>: copyright, and the changelog gzipped (-n:
# no time stamp, so two builds make the same bytes).
file(MAKE_DIRECTORY ${FERRY_DEB_STAGE})
add_custom_command(OUTPUT ${FERRY_DEB_STAGE}/changelog.gz
    COMMAND gzip -9nc ${deb}/changelog > ${FERRY_DEB_STAGE}/changelog.gz
    DEPENDS ${deb}/changelog VERBATIM)
add_custom_target(ferry_deb_docs ALL DEPENDS ${FERRY_DEB_STAGE}/changelog.gz)
foreach(pkg ferry ferry-dev)
    if(pkg STREQUAL "ferry")
        set(comp ferry)
    else()
        set(comp dev)
    endif()
    install(FILES ${deb}/copyright ${FERRY_DEB_STAGE}/changelog.gz
            DESTINATION share/doc/${pkg} COMPONENT ${comp} EXCLUDE_FROM_ALL)
endforeach()

# conffiles: every file the ferry package puts under /etc.
file(WRITE ${FERRY_DEB_STAGE}/conffiles "/etc/ferry/ferry.yaml\n/etc/ferry/connector.yaml\n")
# Copied at configure time (and again when they change); CPack sets the modes of
# control files itself (CONTROL_STRICT_PERMISSION: scripts 0755, the rest 0644).
foreach(script postinst prerm postrm)
    configure_file(${deb}/${script} ${FERRY_DEB_STAGE}/${script} COPYONLY)
endforeach()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ferry)
set(CPACK_PACKAGE_VENDOR "ferry")
set(CPACK_PACKAGE_CONTACT "ferry maintainers <maintainers@users.noreply.b-seed-14933281.example>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL ferry dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS OFF)

set(CPACK_DEBIAN_FERRY_PACKAGE_NAME ferry)
set(CPACK_DEBIAN_FERRY_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_FERRY_PACKAGE_DEPENDS "adduser, openssl")
set(CPACK_COMPONENT_FERRY_DESCRIPTION
"self-hosted connectivity gateway and on-premise connector
ferry gives applications one place to reach remote systems, on the Internet
and on-premise behind a firewall, without holding their credentials or
opening inbound ports. It accepts SAP BTP destination properties verbatim.

One binary, two roles: the gateway (HTTP forward and transparent proxy,
SOCKS5, TCP and LDAP listeners, a destination API) and the connector, which
dials out to the gateway and enforces access control on-premise. Protocols
are plugins; authentication flows and per-destination rules are Lua
policies. Units: ferry-gateway.service, ferry-connector.service.")
set(CPACK_DEBIAN_FERRY_PACKAGE_CONTROL_EXTRA
    ${FERRY_DEB_STAGE}/conffiles ${FERRY_DEB_STAGE}/postinst
    ${FERRY_DEB_STAGE}/prerm ${FERRY_DEB_STAGE}/postrm)

set(CPACK_DEBIAN_DEV_PACKAGE_NAME ferry-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "pkgconf | pkg-config")
set(CPACK_DEBIAN_DEV_PACKAGE_ENHANCES "ferry")
set(CPACK_COMPONENT_DEV_DESCRIPTION
"headers to build protocol plugins for the ferry gateway
The public plugin ABI of ferry (include/ferry/) and ferry-plugin.pc, which
tells a plugin's build where the headers are and where the gateway loads
plugins from (pkg-config --variable=plugindir ferry-plugin).")

include(CPack)
