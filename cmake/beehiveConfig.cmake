# beehiveConfig.cmake - find_package(beehive) for an installed beehive.
#
#   find_package(beehive 0.1 REQUIRED)
#   target_link_libraries(app PRIVATE beehive::beehive)
#
# beehive::beehive is the shared library, or the static one when
# beehive_USE_STATIC_LIBS is ON (as Boost_USE_STATIC_LIBS); beehive::shared
# and beehive::static name each. beehive::mpi is the MPI start-up
# (beehive_mpi.h), where it was built (MPI found): check
# `if(TARGET beehive::mpi)`. Every path is relative to this file, so the
# installed tree may be moved.
cmake_minimum_required(VERSION 3.18)

include("${CMAKE_CURRENT_LIST_DIR}/beehiveDeps.cmake")
if(BH_DEPS_MISSING)
  list(JOIN BH_DEPS_MISSING ", " _bh_missing)
  set(beehive_FOUND FALSE)
  set(beehive_NOT_FOUND_MESSAGE
      "beehive needs what is not installed: ${_bh_missing}")
  return()
endif()

include("${CMAKE_CURRENT_LIST_DIR}/beehiveTargets.cmake")
# Links MPI privately: its users need no MPI of their own to build.
include("${CMAKE_CURRENT_LIST_DIR}/beehiveMpiTargets.cmake" OPTIONAL)

if(NOT TARGET beehive::beehive)
  add_library(beehive::beehive INTERFACE IMPORTED)
  if(beehive_USE_STATIC_LIBS)
    set_target_properties(beehive::beehive PROPERTIES
      INTERFACE_LINK_LIBRARIES beehive::static)
  else()
    set_target_properties(beehive::beehive PROPERTIES
      INTERFACE_LINK_LIBRARIES beehive::shared)
  endif()
endif()
