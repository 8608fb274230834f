# The newer fuzz targets' seed replays, in every build (tests/CMakeLists.txt includes
# this with any compiler, FERRY_FUZZ or not): each target's source built with
# -DFERRY_FUZZ_STANDALONE is a plain program that runs the target's own checks over
# corpus/<target>/ and fails when a named seed's verdict drifts (standalone.h). The
# libFuzzer binaries themselves are tests/fuzz/CMakeLists.txt's.
set(FERRY_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR})

# ferry_fuzz_seeds(<target> SOURCES <files...> INCLUDES <dirs...> LIBS <libs...>)
function(ferry_fuzz_seeds name)
    cmake_parse_arguments(F "" "" "SOURCES;INCLUDES;LIBS" ${ARGN})
    add_executable(${name}_fuzz_seeds ${FERRY_FUZZ_DIR}/${name}_fuzz.c ${F_SOURCES})
    target_include_directories(${name}_fuzz_seeds PRIVATE ${FERRY_FUZZ_DIR}
        ${PROJECT_SOURCE_DIR}/core/include ${PROJECT_SOURCE_DIR}/core ${F_INCLUDES})
    target_compile_definitions(${name}_fuzz_seeds PRIVATE FERRY_FUZZ_STANDALONE)
    target_link_libraries(${name}_fuzz_seeds PRIVATE ${F_LIBS})
    file(GLOB seeds LIST_DIRECTORIES false CONFIGURE_DEPENDS ${FERRY_FUZZ_DIR}/corpus/${name}/*)
    add_test(NAME unit/fuzz_${name}_seeds COMMAND ${name}_fuzz_seeds ${seeds})
    set_tests_properties(unit/fuzz_${name}_seeds PROPERTIES LABELS "unit;fuzz" TIMEOUT 120)
endfunction()

# The same sources and includes for the libFuzzer binary and its seed replay.
set(FERRY_FUZZ_socks5_SOURCES ${PROJECT_SOURCE_DIR}/plugins/socks5/socks5-parse.c)
set(FERRY_FUZZ_socks5_INCLUDES ${PROJECT_SOURCE_DIR}/plugins/socks5)
set(FERRY_FUZZ_socks5_LIBS ferry_core_util)

set(FERRY_FUZZ_ldap_SOURCES ${PROJECT_SOURCE_DIR}/plugins/ldap/ber.c)
set(FERRY_FUZZ_ldap_INCLUDES ${PROJECT_SOURCE_DIR}/plugins/ldap)

file(GLOB FERRY_FUZZ_conf_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/core/conf/*.c)
set(FERRY_FUZZ_conf_LIBS ferry_core_dest)

set(FERRY_FUZZ_dest_api_SOURCES ${PROJECT_SOURCE_DIR}/core/admin/dest-change.c)
set(FERRY_FUZZ_dest_api_LIBS ferry_core_admin)

set(FERRY_FUZZ_tunnel_hello_SOURCES ${PROJECT_SOURCE_DIR}/core/tunnel/gateway.c
    ${PROJECT_SOURCE_DIR}/core/tunnel/replicas.c)
set(FERRY_FUZZ_tunnel_hello_LIBS ferry_core_tunnel)

set(FERRY_FUZZ_tunnel_SOURCES ${PROJECT_SOURCE_DIR}/core/tunnel/session.c)
set(FERRY_FUZZ_tunnel_LIBS ferry_core_tunnel)

foreach(t socks5 ldap conf dest_api tunnel_hello tunnel)
    ferry_fuzz_seeds(${t} SOURCES ${FERRY_FUZZ_${t}_SOURCES}
                     INCLUDES ${FERRY_FUZZ_${t}_INCLUDES} LIBS ${FERRY_FUZZ_${t}_LIBS})
endforeach()
