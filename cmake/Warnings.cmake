# Warnings.cmake - bh_set_warnings(<target>): the project's warning set,
# turned into errors when BH_WERROR is ON.
option(BH_WERROR "Treat compiler warnings as errors" OFF)

set(BH_WARNING_FLAGS
    -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
    -Wundef -Wwrite-strings)

function(bh_set_warnings target)
  target_compile_options(${target} PRIVATE ${BH_WARNING_FLAGS})
  # Fibers have guarded stacks: probe every page of a large frame so that a
  # deep call hits the guard instead of jumping past it.
  target_compile_options(${target} PRIVATE -fstack-clash-protection)
  if(BH_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
