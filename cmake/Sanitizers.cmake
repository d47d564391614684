# Sanitizers.cmake - BH_SANITIZER=none|address|undefined|address,undefined|
# thread instruments every target of the build (library, tests, examples).
set(BH_SANITIZER "none" CACHE STRING
    "Sanitizers: none, address, undefined, address,undefined or thread")
set_property(CACHE BH_SANITIZER PROPERTY STRINGS
             none address undefined "address,undefined" thread)

set(_bh_known_sanitizers none address undefined "address,undefined"
    "undefined,address" thread)
if(NOT BH_SANITIZER IN_LIST _bh_known_sanitizers)
  message(FATAL_ERROR "BH_SANITIZER=\"${BH_SANITIZER}\" is not one of: "
                      "none, address, undefined, address,undefined, thread")
endif()

if(NOT BH_SANITIZER STREQUAL "none")
  set(_bh_san_flags -fsanitize=${BH_SANITIZER} -fno-omit-frame-pointer
      -fno-sanitize-recover=all)
  add_compile_options(${_bh_san_flags})
  add_link_options(-fsanitize=${BH_SANITIZER})
  message(STATUS "beehive: building with -fsanitize=${BH_SANITIZER}")
endif()
