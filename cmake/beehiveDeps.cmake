# beehiveDeps.cmake - the libraries libbeehive links with, as imported
# targets: PkgConfig::bh_libuv, bh_msgpack, bh_curl, bh_expat, bh_libcrypto,
# beehive::boost_context and Threads::Threads. Read by the build and, once
# installed, by beehiveConfig.cmake: a program linking libbeehive.a needs
# them all, and beehive.h includes msgpack.h. The bh_ prefix keeps our
# pkg-config results apart from a user's own (LIBUV_FOUND...).
#
# Sets BH_DEPS_MISSING to what was not found, each with its Debian package.
set(BH_DEPS_MISSING)
find_package(PkgConfig QUIET)
find_package(Threads QUIET)
if(NOT PKG_CONFIG_FOUND)
  list(APPEND BH_DEPS_MISSING "pkg-config (Debian: pkg-config)")
  return()
endif()
if(NOT Threads_FOUND)
  list(APPEND BH_DEPS_MISSING "POSIX threads (Debian: libc6-dev)")
endif()

# bh_need(<name> <Debian package> <pkg-config module>...): the first module
# found becomes PkgConfig::bh_<name>.
macro(bh_need _name _deb)
  pkg_search_module(bh_${_name} QUIET IMPORTED_TARGET ${ARGN})
  if(NOT bh_${_name}_FOUND)
    list(APPEND BH_DEPS_MISSING "${ARGV2} (Debian: ${_deb})")
  endif()
endmacro()

bh_need(libuv libuv1-dev libuv)
# msgpack-c names its pkg-config file "msgpack" up to 4.x, "msgpack-c" later.
bh_need(msgpack libmsgpack-dev msgpack-c msgpack)
# Every bee's HTTP session and S3 client: libcurl's multi_socket interface.
bh_need(curl libcurl4-openssl-dev libcurl)
# S3's XML answers (errors, listings).
bh_need(expat libexpat1-dev expat)
# S3's request signatures (sigv4.c): HMAC-SHA256 and SHA-256.
bh_need(libcrypto libssl-dev libcrypto)

# The fiber module calls Boost.Context's C-ABI jump_fcontext/make_fcontext;
# Boost ships no pkg-config file for it.
find_library(BH_BOOST_CONTEXT_LIBRARY NAMES boost_context)
if(NOT BH_BOOST_CONTEXT_LIBRARY)
  list(APPEND BH_DEPS_MISSING "boost_context (Debian: libboost-context-dev)")
elseif(NOT TARGET beehive::boost_context)
  add_library(beehive::boost_context UNKNOWN IMPORTED)
  set_target_properties(beehive::boost_context PROPERTIES
    IMPORTED_LOCATION "${BH_BOOST_CONTEXT_LIBRARY}")
endif()
